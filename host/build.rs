fn main() {
    // Migrations are embedded and the WIT world is compiled into the host's bindings.
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../wit");
}
