//! The `stemma` binary's help and configuration errors.

use std::process::Command;

fn stemma(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stemma"))
        .args(args)
        .env_remove("STEMMA_NODE")
        .output()
        .expect("running stemma")
}

#[test]
fn help_teaches_the_first_steps_and_exit_codes() {
    let out = stemma(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["stemma dev", "stemma put", "Exit codes", "STEMMA_NODE"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn a_bad_config_value_is_named_and_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stemma.toml");
    std::fs::write(&config, "chunk_size = 12\n").unwrap();
    let out = stemma(&["node", "run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chunk_size"));

    std::fs::write(&config, "listen_addr = \"127.0.0.1:1\"\n").unwrap();
    let out = stemma(&["node", "run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_addr"));
}

#[test]
fn client_commands_without_a_node_say_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stemma"))
        .args(["ls", "demo"])
        .env_remove("STEMMA_NODE")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node"));
}
