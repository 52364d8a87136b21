//! Host-side bindings of the `floh:plugin` WIT world.

wasmtime::component::bindgen!({
    world: "job-plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});
