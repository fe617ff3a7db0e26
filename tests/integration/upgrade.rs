//! Upgrading the Python function's stack in place, in moto's CloudFormation (in-process
//! moto, from Python): tests/upgrade/upgrade.py follows README's steps and checks each.

use std::process::Command;

use crate::support::root;

#[test]
fn the_python_functions_stack_upgrades_in_place() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(root().join("tests/upgrade/upgrade.py"))
        .current_dir(root())
        .output()
        .expect("python3 tests/upgrade/upgrade.py (pip install 'moto[server]' aws-sam-translator)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.ends_with("the Python stack upgraded in place\n"), "{stdout}");
}
