//! The command line itself: `init`, shell completions and the man page.

use std::fs;
use std::process::Command;

use crate::util::{TestDir, run, text};

#[test]
fn init_writes_a_starter_and_never_overwrites() {
    let t = TestDir::new();
    run(t.strata().arg("init"));
    let recipe = fs::read_to_string(t.join("image.kdl")).unwrap();
    assert!(recipe.contains("debian \"bookworm\""), "{recipe}");
    assert!(t.join("analysis/main.py").is_file());
    fs::write(t.join("image.kdl"), "mine\n").unwrap();
    let again = t.strata().arg("init").output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(fs::read_to_string(t.join("image.kdl")).unwrap(), "mine\n");
}

#[test]
fn completions_are_valid_shell_and_the_man_page_lists_commands() {
    let t = TestDir::new();
    let script = run(t.strata().args(["completions", "bash"]));
    fs::write(t.join("strata.bash"), &script).unwrap();
    run(Command::new("bash").arg("-n").arg(t.join("strata.bash")));
    assert!(script.contains("resolve-base"), "{script}");
    let man = run(t.strata().arg("man"));
    assert!(
        man.starts_with(".ie") || man.contains(".TH strata"),
        "{man}"
    );
    for command in ["build", "push", "login", "inspect", "init"] {
        assert!(man.contains(command), "the man page lacks {command}");
    }
}
