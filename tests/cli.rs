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

// Progress and logging: bars on a terminal, lines elsewhere, `-q` and `-v`.

use crate::util::{EPOCH, assert_success};

/// Builds the local-repository recipe of `tests/packages.rs` (resolve,
/// downloads, install, two layers) under a pseudo-terminal, with `cache` as
/// the cache; returns the typescript's bytes without `script`'s own lines.
fn build_on_a_terminal(t: &TestDir, recipe: &std::path::Path, cache: &str, color: bool) -> String {
    let quote = |p: &std::path::Path| format!("'{}'", p.display());
    // A known width, so that the screen below wraps where the terminal did.
    let shell = format!(
        "stty cols 200 rows 50; exec {} build {} -o out",
        quote(std::path::Path::new(env!("CARGO_BIN_EXE_strata"))),
        quote(recipe)
    );
    let typescript = t.join(&format!("{cache}.typescript"));
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &shell])
        .arg(&typescript)
        .env("STRATA_CACHE", t.join(cache))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .current_dir(t.path());
    if color {
        cmd.env_remove("NO_COLOR");
    } else {
        cmd.env("NO_COLOR", "1");
    }
    let output = cmd.output().unwrap();
    assert_success(&output, "strata build under script");
    // Split on `\n` alone: the `\r` before it is part of the screen.
    text(&fs::read(&typescript).unwrap())
        .split('\n')
        .filter(|l| !l.starts_with("Script started on ") && !l.starts_with("Script done on "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rows a terminal `width` columns wide shows after `raw`: enough of a
/// VT100 for indicatif (carriage return, cursor movement, erasing, wrapping).
fn screen(raw: &str, width: usize) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut r, mut c) = (0usize, 0usize);
    let mut chars = raw.chars();
    let grow = |rows: &mut Vec<Vec<char>>, r: usize| {
        while rows.len() <= r {
            rows.push(Vec::new());
        }
    };
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => c = 0,
            '\n' => {
                r += 1;
                grow(&mut rows, r);
            }
            '\x1b' => {
                if chars.next() != Some('[') {
                    continue;
                }
                let mut params = String::new();
                let command = loop {
                    match chars.next() {
                        Some(p) if p.is_ascii_digit() || p == ';' || p == '?' => params.push(p),
                        Some(command) => break command,
                        None => break '\0',
                    }
                };
                let n: usize = params.parse().unwrap_or(1).max(1);
                match command {
                    'A' => r = r.saturating_sub(n),
                    'B' => {
                        r += n;
                        grow(&mut rows, r);
                    }
                    'C' => c += n,
                    'D' => c = c.saturating_sub(n),
                    'G' => c = n - 1,
                    'K' if params == "2" => rows[r].clear(),
                    'K' if params == "1" => {
                        for cell in rows[r].iter_mut().take(c + 1) {
                            *cell = ' ';
                        }
                    }
                    'K' => rows[r].truncate(c),
                    'J' => {
                        rows[r].truncate(c);
                        rows.truncate(r + 1);
                    }
                    _ => {} // colours, cursor visibility
                }
            }
            ch => {
                if c >= width {
                    (r, c) = (r + 1, 0);
                    grow(&mut rows, r);
                }
                let row = &mut rows[r];
                row.resize(row.len().max(c + 1), ' ');
                row[c] = ch;
                c += 1;
            }
        }
    }
    rows.into_iter()
        .map(|row| row.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
}

/// Whether `raw` holds a colour or other SGR sequence (`ESC [ … m`).
fn has_sgr(raw: &str) -> bool {
    raw.split('\x1b').skip(1).any(|s| {
        s.strip_prefix('[')
            .map(|s| s.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';'))
            .is_some_and(|s| s.starts_with('m'))
    })
}

#[test]
fn a_terminal_gets_bars_that_give_way_to_the_summary() {
    let t = TestDir::new();
    let (_repo, url) = crate::packages::standard_repo(&t);
    let recipe = crate::packages::recipe(&t, &url, "\"app\"");
    for color in [true, false] {
        let _ = fs::remove_file(t.join("image/image.lock"));
        let cache = if color { "cache-color" } else { "cache-plain" };
        let raw = build_on_a_terminal(&t, &recipe, cache, color);
        // Bars were drawn: cursor control, and the phases by name.
        assert!(raw.contains("\x1b[") && raw.contains('\r'), "{raw:?}");
        for phase in ["resolve", "download", "install"] {
            assert!(raw.contains(phase), "no {phase} bar: {raw:?}");
        }
        assert!(raw.contains("hello-bin_1.0_amd64.deb"), "{raw:?}");
        assert_eq!(
            has_sgr(&raw),
            color,
            "colours with NO_COLOR unset only: {raw:?}"
        );

        // …and cleared: what stays on the screen is the summary, last.
        let rows = screen(&raw, 200);
        let shown: Vec<&String> = rows.iter().filter(|r| !r.is_empty()).collect();
        let last = shown.last().unwrap();
        assert!(
            last.starts_with("built pkgs:1 → out (sha256:") && last.ends_with('s'),
            "{rows:#?}"
        );
        // One per source package (app and the three it needs), the
        // configuration, strata's own.
        let layers = shown.iter().filter(|r| r.starts_with("  layer ")).count();
        assert_eq!(layers, 6, "{rows:#?}");
        assert_eq!(shown.len(), 7, "bars left on the screen: {rows:#?}");
    }
}

#[test]
fn plain_progress_is_one_line_per_step() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let out = t.join("out");
    // stderr is a pipe here: plain lines without asking. The first build
    // compresses, the second finds its layers in the cache.
    for (args, note) in [
        (&[][..], " B) done in "),
        (&["--progress", "plain"][..], " (cached) done in "),
    ] {
        let built = t.build_with(&recipe, &out, args);
        let stderr = text(&built.stderr);
        assert!(
            !stderr.contains('\r') && !stderr.contains('\x1b'),
            "{stderr:?}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        // Layers are compressed at the same time: each one's start comes
        // before its end, in whatever order they interleave.
        for layer in ["strata", "app"] {
            let start = format!("compress {layer}");
            let at = |pred: &dyn Fn(&str) -> bool| lines.iter().position(|l| pred(l));
            let started = at(&|l| l == start);
            let ended = at(&|l| l.starts_with(&format!("{start} (")) && l.contains(note));
            assert!(
                matches!((started, ended), (Some(a), Some(b)) if a < b && b < 4),
                "{layer}: {stderr}"
            );
        }
        assert!(lines[4].starts_with("  layer strata "), "{stderr}");
        assert!(lines[6].starts_with("built hello:1.0.0 → "), "{stderr}");
        assert_eq!(lines.len(), 7, "{stderr}");
    }
    // `--progress none` keeps the result and drops the steps.
    let none = t.build_with(&recipe, &out, &["--progress", "none"]);
    let stderr = text(&none.stderr);
    assert!(
        stderr.starts_with("  layer strata ") && !stderr.contains("compress"),
        "{stderr}"
    );

    // Downloads give their file and size.
    let (_repo, url) = crate::packages::standard_repo(&t);
    let recipe = crate::packages::recipe(&t, &url, "\"app\"");
    let built = t.build_with(&recipe, &t.join("pkgs"), &["--progress", "plain"]);
    let stderr = text(&built.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    for expected in [
        "resolve Debian packages",
        "download hello-bin_1.0_amd64.deb",
        "install packages for linux/amd64",
        "compress packages-hello-bin",
    ] {
        assert!(lines.contains(&expected), "no `{expected}`:\n{stderr}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("download hello-bin_1.0_amd64.deb (")
                && l.contains(" KiB) done in ")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("resolve Debian packages (4 locked) done in ")),
        "{stderr}"
    );
}

#[test]
fn quiet_prints_nothing_and_verbose_logs() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let quiet = t.build_with(&recipe, &t.join("out"), &["-q"]);
    assert_eq!(text(&quiet.stderr), "");
    assert_eq!(text(&quiet.stdout), "");
    assert!(t.join("out/index.json").is_file());
    let init = t.strata().args(["init", "--quiet"]).output().unwrap();
    assert_success(&init, "strata init --quiet");
    assert_eq!(text(&init.stderr), "");

    // Errors still show.
    let failed = t
        .build_cmd(&t.join("nope.kdl"), &t.join("out"))
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed.stderr).contains("nope.kdl"),
        "{}",
        text(&failed.stderr)
    );

    let verbose = t.build_with(&recipe, &t.join("out"), &["-v"]);
    let stderr = text(&verbose.stderr);
    assert!(
        stderr.contains("INFO strata_builder::build: layer layer=app digest=sha256:")
            && stderr.contains("cached=true"),
        "{stderr}"
    );
    assert!(!stderr.contains("DEBUG"), "{stderr}");
    assert!(!text(&quiet.stderr).contains("INFO"));

    let both = t
        .build_cmd(&recipe, &t.join("out"))
        .args(["-q", "-v"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
}

/// A reader that stops early (`strata inspect out | head`) is no error: every
/// command that prints a result ends quietly with status 0 when its stdout
/// is a pipe nobody reads, as ripgrep does.
#[test]
fn a_closed_pipe_ends_quietly() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    t.build(&recipe, &t.join("out"));
    let commands: [&[&str]; 7] = [
        &["inspect", "out"],
        &["inspect", "--json", "out"],
        &["diff", "out", "out"],
        &["sbom", "out"],
        &["lint", "--format", "json", "--static", "hello/image.kdl"],
        &["man"],
        &["completions", "bash"],
    ];
    for args in commands {
        // The read end is closed before strata starts, so its first write
        // meets a closed pipe whatever the timing.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = t.strata().args(args).stdout(writer).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "strata {}: {}",
            args.join(" "),
            text(&output.stderr)
        );
        assert_eq!(text(&output.stderr), "", "strata {}", args.join(" "));
    }
}
