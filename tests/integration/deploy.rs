//! The deployment files agree with the code: probe paths, port, grace period, the plugins
//! folder, and only variables floh knows.

use std::path::Path;

use floh::config::vars;
use serde_yaml::Value;

fn workspace(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

fn manifest(name: &str) -> Value {
    serde_yaml::from_str(&workspace(&format!("deploy/kubernetes/{name}"))).unwrap()
}

fn default(var: &vars::Var) -> &'static str {
    var.default.expect("the variable has a default")
}

#[test]
fn the_deployment_probes_the_right_paths_and_outlasts_the_grace_period() {
    let deployment = manifest("deployment.yaml");
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2, "several replicas share the queue");
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"].as_u64().unwrap().to_string(), default(&vars::PORT));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/api/health/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/api/health/live");

    let grace: u64 = default(&vars::SHUTDOWN_GRACE_SECONDS).parse().unwrap();
    let pause: u64 =
        container["lifecycle"]["preStop"]["exec"]["command"][1].as_str().unwrap().parse().unwrap();
    let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(termination >= grace + pause + 5 && termination >= 30, "{termination} s");

    let mounted: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    let config = manifest("configmap.yaml");
    for var in [&vars::PLUGINS_DIR, &vars::PLUGIN_CACHE_DIR] {
        let path = config["data"][var.name].as_str().unwrap();
        assert!(mounted.contains(&path), "{} ({path}) is a mounted volume", var.name);
    }
    assert_eq!(
        config["data"]["SHUTDOWN_GRACE_SECONDS"].as_str(),
        Some(default(&vars::SHUTDOWN_GRACE_SECONDS))
    );
}

#[test]
fn the_configuration_and_secret_name_only_known_variables() {
    let known: Vec<&str> = vars::ALL.iter().map(|var| var.name).collect();
    for (file, key) in [("configmap.yaml", "data"), ("secret.example.yaml", "stringData")] {
        for (name, value) in manifest(file)[key].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            assert!(known.contains(&name), "{file}: {name} is not a floh variable");
            if file.starts_with("secret") {
                assert_eq!(value.as_str(), Some(""), "{file} ships no secret value for {name}");
            }
        }
    }
}

#[test]
fn the_image_serves_the_same_port_plugins_folder_and_liveness_path() {
    let dockerfile = workspace("Dockerfile");
    assert!(dockerfile.contains(&format!("EXPOSE {}", default(&vars::PORT))));
    assert!(dockerfile.contains(&format!("PORT={}", default(&vars::PORT))));
    assert!(dockerfile.contains("PLUGINS_DIR=/plugins") && dockerfile.contains("VOLUME [\"/plugins\"]"));
    assert!(dockerfile.contains("STOPSIGNAL SIGTERM"));
    assert!(dockerfile.contains("/api/health/live"));
    assert!(dockerfile.contains("plugins/build.sh"), "the image bundles the plugins the Justfile builds");
}

/// The job plugins in `plugins/`.
fn job_plugins() -> std::collections::BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        // A job plugin is built as a component (cdylib); the SDK and the shared crates are not.
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("crate-type = [\"cdylib\"]"))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_job_plugin_is_bundled_built_for_the_tests_and_granted_in_the_example() {
    let script = workspace("plugins/build.sh");
    let list = script.split("bundled=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let bundled: std::collections::BTreeSet<String> = list.split_whitespace().map(str::to_owned).collect();
    assert_eq!(bundled, job_plugins(), "plugins/build.sh bundles every job plugin");
    for plugin in &bundled {
        assert!(crate::fixtures::PACKAGES.contains(&plugin.as_str()), "the tests build {plugin}");
    }
    let example = workspace("floh.example.toml");
    for plugin in bundled.iter().filter(|p| *p != "hello") {
        assert!(example.contains(&format!("[plugins.{plugin}]")), "floh.example.toml grants {plugin}");
    }
}
