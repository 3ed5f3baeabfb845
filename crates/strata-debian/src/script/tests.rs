use std::collections::BTreeMap;

use super::*;

/// An image as a map of path → (content, executable).
struct Image(BTreeMap<String, (Vec<u8>, bool)>);

impl Files for Image {
    fn kind(&self, path: &str) -> Option<FileKind> {
        if let Some((_, executable)) = self.0.get(path) {
            return Some(FileKind::File {
                executable: *executable,
            });
        }
        let prefix = format!("{path}/");
        self.0
            .keys()
            .any(|k| k.starts_with(&prefix))
            .then_some(FileKind::Dir)
    }
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.0.get(path).map(|(b, _)| b.clone())
    }
    fn attributes(&self, path: &str) -> Option<(u32, u32, u32)> {
        self.kind(path).map(|_| (0o755, 0, 50))
    }
    fn list(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
    fn canonical(&self, path: &str) -> String {
        match path.strip_prefix("/bin") {
            Some(rest) => format!("/usr/bin{rest}"),
            None => path.to_owned(),
        }
    }
    fn package_files(&self, package: &str) -> Option<Vec<String>> {
        (package == "libfoo").then(|| {
            vec![
                "/usr/lib/foo/a.py".to_owned(),
                "/usr/lib/foo/b.so".to_owned(),
            ]
        })
    }
}

fn image(files: &[(&str, &str, bool)]) -> Image {
    Image(
        files
            .iter()
            .map(|(p, c, x)| (p.to_string(), (c.as_bytes().to_vec(), *x)))
            .collect(),
    )
}

fn run(script: &str, files: &Image) -> Evaluation {
    let answers = BTreeMap::new();
    evaluate(
        script,
        files,
        &Context {
            architecture: "amd64",
            package: "test",
            templates: None,
            answers: &answers,
        },
    )
}

fn alternatives(evaluation: &Evaluation) -> Vec<&Alternative> {
    evaluation
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Alternative(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn slaves_built_by_a_function_in_a_command_substitution() {
    // xz-utils' postinst, verbatim.
    let script = r#"#!/bin/sh
set -e

slave () {
	dir=$1 filename=$2 target=$3
	echo "--slave $dir/$filename $filename $dir/$target"
}

update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 $(
	slave /usr/share/man/man1 lzma.1.gz xz.1.gz
	slave /usr/bin unlzma unxz
	for util in cat more
	do
		slave /usr/bin lz$util xz$util
	done
)
"#;
    let evaluation = run(script, &image(&[]));
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    let found = alternatives(&evaluation);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].link.as_str(),
            found[0].path.as_str(),
            found[0].priority
        ),
        ("/usr/bin/lzma", "/usr/bin/xz", 20)
    );
    let slaves: Vec<&str> = found[0].slaves.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        slaves,
        [
            "/usr/share/man/man1/lzma.1.gz",
            "/usr/bin/unlzma",
            "/usr/bin/lzcat",
            "/usr/bin/lzmore"
        ]
    );
}

#[test]
fn variables_case_and_loops_as_openjdk_writes_them() {
    let script = r#"#!/bin/sh
set -e
priority=1711
basedir=/usr/lib/jvm/java-17-openjdk-amd64
jre_tools='java keytool'
case "$1" in
configure)
    if ! mountpoint -q /proc; then
	exit 1
    fi
    if [ -z "$2" ]; then
	update_alternatives=y
    fi
    if [ "$update_alternatives" = y ]; then
    if [ "$DPKG_MAINTSCRIPT_ARCH" != $(dpkg --print-architecture) ]; then
	priority=$(expr $priority - 1)
    fi
    for i in $jre_tools; do
	unset slave1 || true
        if [ -e $basedir/man/man1/$i.1.gz ]; then
	    slave1="--slave /usr/share/man/man1/$i.1.gz $i.1.gz $basedir/man/man1/$i.1.gz"
	fi
        update-alternatives \
            --install \
            /usr/bin/$i \
            $i \
            $basedir/bin/$i \
            $priority \
	    $slave1
    done
    fi
    ;;
abort-upgrade) exit 1 ;;
esac
exit 0
"#;
    let files = image(&[(
        "/usr/lib/jvm/java-17-openjdk-amd64/man/man1/java.1.gz",
        "",
        false,
    )]);
    let evaluation = run(script, &files);
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    let found = alternatives(&evaluation);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].path, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java");
    assert_eq!(found[0].priority, 1711);
    assert_eq!(found[0].slaves.len(), 1);
    assert_eq!(found[1].link, "/usr/bin/keytool");
    assert!(found[1].slaves.is_empty());
}

#[test]
fn ucf_writes_the_config_a_sed_edited_temporary_file_holds() {
    // r-base-core's postinst, shortened.
    let script = r#"#!/bin/sh
set -e
case "$1" in
  configure)
    tmpRenviron=$(mktemp)
    chmod 0644 "$tmpRenviron"
    cat /usr/lib/R/etc/Renviron.ucf > "$tmpRenviron"
        papersize=`paperconf`
        sed -E -i -e 's/^R_PAPERSIZE_USER=\$\{R_PAPERSIZE\}/R_PAPERSIZE_USER=\$\{R_PAPERSIZE-'"'$papersize'\}/" "$tmpRenviron"
    ucf "$tmpRenviron" /etc/R/Renviron
    ucfr r-base-core /etc/R/Renviron
    rm -f "$tmpRenviron"
    if [ -e /etc/staff-group-for-usr-local ]; then
        perm=2775
        group=staff
    else
        perm=755
        group=root
    fi
    localsitelibrary=/usr/local/lib/R/site-library
    if [ ! -e $localsitelibrary ]; then
        mkdir -p $localsitelibrary 2> /dev/null || true
        chmod $perm $localsitelibrary 2> /dev/null || true
        chown root:$group $localsitelibrary 2> /dev/null || true
    fi
    ;;
esac
"#;
    let files = image(&[(
        "/usr/lib/R/etc/Renviron.ucf",
        "R_PAPERSIZE_USER=${R_PAPERSIZE}\nR_LIBS_SITE=x\n",
        false,
    )]);
    let evaluation = run(script, &files);
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    let changes: BTreeMap<&str, &Change> = evaluation
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Path { path, change } => Some((path.as_str(), change)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes.get("/etc/R/Renviron"),
        Some(&&Change::File {
            bytes: b"R_PAPERSIZE_USER=${R_PAPERSIZE-'letter'}\nR_LIBS_SITE=x\n".to_vec(),
            mode: 0o644
        })
    );
    assert_eq!(
        changes.get("/usr/local/lib/R/site-library"),
        Some(&&Change::Dir { mode: 0o755 })
    );
    assert!(
        !changes.keys().any(|p| p.starts_with("/tmp/")),
        "temporary files are not effects: {changes:?}"
    );
}

#[test]
fn debconf_defaults_and_answers_drive_tzdata() {
    let script = r#"#!/bin/sh
set -e
. /usr/share/debconf/confmodule
db_version 2.0
if [ "$1" = configure ]; then
	AREA=Etc
	ZONE=UTC
	db_get tzdata/Areas && AREA="$RET"
	db_get "tzdata/Zones/$AREA" && ZONE="$RET"
	TIMEZONE="$AREA/$ZONE"
	ln -nsf "/usr/share/zoneinfo/$TIMEZONE" "$DPKG_ROOT/etc/localtime.dpkg-new" && \
		mv -f "$DPKG_ROOT/etc/localtime.dpkg-new" "$DPKG_ROOT/etc/localtime"
	echo "$TIMEZONE" > "$DPKG_ROOT/etc/timezone"
fi
"#;
    let answers: BTreeMap<String, String> = [
        ("tzdata/Areas".to_owned(), "Europe".to_owned()),
        ("tzdata/Zones/Europe".to_owned(), "London".to_owned()),
    ]
    .into();
    let files = image(&[("/etc/passwd", "root:x:0:0::/root:/bin/sh\n", false)]);
    let evaluation = evaluate(
        script,
        &files,
        &Context {
            architecture: "amd64",
            package: "tzdata",
            templates: None,
            answers: &answers,
        },
    );
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    assert!(evaluation.effects.contains(&Effect::Path {
        path: "/etc/localtime".into(),
        change: Change::Symlink("/usr/share/zoneinfo/Europe/London".into())
    }));
    assert!(evaluation.effects.contains(&Effect::Path {
        path: "/etc/timezone".into(),
        change: Change::File {
            bytes: b"Europe/London\n".to_vec(),
            mode: 0o644
        }
    }));
    assert!(
        !evaluation
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Path { path, .. } if path.ends_with(".dpkg-new")))
    );
}

#[test]
fn accounts_shells_and_stat_overrides() {
    let script = r#"#!/bin/sh
set -e
if ! getent passwd messagebus >/dev/null; then
  adduser --system --quiet --home /nonexistent --no-create-home \
    --disabled-password --group messagebus
fi
if ! getent group _ssh >/dev/null; then addgroup --system --quiet _ssh; fi
if ! dpkg-statoverride --list /usr/bin/ssh-agent >/dev/null; then
  dpkg-statoverride --quiet --update --add root _ssh 2755 /usr/bin/ssh-agent
fi
useradd -r -s /usr/sbin/nologin -d /var/lib/x _x
add-shell /usr/bin/fish
adduser alice
"#;
    let evaluation = run(script, &image(&[]));
    assert!(evaluation.effects.contains(&Effect::User(SystemUser {
        name: "messagebus".into(),
        home: Some("/nonexistent".into()),
        shell: None,
        gecos: None,
        own_group: true,
        group: None,
        uid: None,
    })));
    assert!(evaluation.effects.contains(&Effect::Group {
        name: "_ssh".into(),
        gid: None
    }));
    assert!(evaluation.effects.contains(&Effect::StatOverride {
        owner: "root".into(),
        group: "_ssh".into(),
        mode: 0o2755,
        path: "/usr/bin/ssh-agent".into()
    }));
    assert!(
        evaluation
            .effects
            .iter()
            .any(|e| matches!(e, Effect::User(u) if u.name == "_x"))
    );
    assert!(
        evaluation
            .effects
            .contains(&Effect::Shell("/usr/bin/fish".into()))
    );
    // A login account is not a system account: reported, not created.
    assert_eq!(evaluation.unknown.len(), 1, "{:?}", evaluation.unknown);
    assert_eq!(evaluation.unknown[0].line, 13);
}

#[test]
fn unknown_commands_are_reported_with_their_line_and_never_run() {
    let script = "#!/bin/sh\nset -e\ncase \"$1\" in\n configure)\n  frobnicate --all\n  ;;\n remove)\n  other-tool\n  ;;\nesac\n";
    let evaluation = run(script, &image(&[]));
    assert_eq!(evaluation.unknown.len(), 1, "{:?}", evaluation.unknown);
    assert_eq!(evaluation.unknown[0].line, 5);
    assert_eq!(evaluation.unknown[0].command, "frobnicate --all");
}

#[test]
fn endless_loops_stop() {
    let evaluation = run("while :; do :; done\n", &image(&[]));
    assert_eq!(evaluation.unknown.len(), 1);
    assert!(evaluation.unknown[0].reason.contains("evaluation stopped"));
}

#[test]
fn which_and_while_read_over_a_file() {
    let script = r#"
if which update-binfmts >/dev/null; then update-binfmts --import jar; fi
found=$(which mawk)
while read -r shell; do
  add-shell "$shell"
done < /usr/share/x/shells
"#;
    let files = image(&[
        ("/usr/bin/mawk", "", true),
        ("/usr/share/x/shells", "/bin/a\n/bin/b\n", false),
    ]);
    let evaluation = run(script, &files);
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    let shells: Vec<&Effect> = evaluation
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Shell(_)))
        .collect();
    assert_eq!(shells.len(), 2);
}

#[test]
fn readlink_uname_sed_print_and_dpkg_listing() {
    let script = r#"#!/bin/sh
[ "$(readlink -f /bin)" = /usr/bin ] || frobnicate
if [ "$(uname -s)" = "Linux" ]; then
	update-alternatives --install /usr/bin/pager pager /bin/more 50
fi
vendor=$(sed -ne 's/^Vendor: *\([^ ]\+\) */\1/p' /etc/dpkg/origins/default | tr A-Z a-z)
echo "$vendor" > /etc/vendor
dpkg -L libfoo | sed -n '/\.py$/p' > /etc/pyfiles
x=$(
  echo a
  unknown-in-substitution
)
"#;
    let files = image(&[(
        "/etc/dpkg/origins/default",
        "Vendor: Debian\nVendor-URL: x\n",
        false,
    )]);
    let evaluation = run(script, &files);
    assert_eq!(evaluation.unknown.len(), 1, "{:?}", evaluation.unknown);
    // The line is the script's, not the substitution's.
    assert_eq!(evaluation.unknown[0].line, 11);
    assert_eq!(alternatives(&evaluation).len(), 1);
    assert!(evaluation.effects.contains(&Effect::Path {
        path: "/etc/vendor".into(),
        change: Change::File {
            bytes: b"debian\n".to_vec(),
            mode: 0o644
        }
    }));
    assert!(evaluation.effects.contains(&Effect::Path {
        path: "/etc/pyfiles".into(),
        change: Change::File {
            bytes: b"/usr/lib/foo/a.py\n".to_vec(),
            mode: 0o644
        }
    }));
}

#[test]
fn a_string_doubling_without_end_stops_with_memory_bounded() {
    let evaluation = run("x=ab\nwhile :; do x=\"$x$x\"; done\n", &image(&[]));
    assert_eq!(evaluation.unknown.len(), 1, "{:?}", evaluation.unknown);
    assert!(
        evaluation.unknown[0].reason.contains("16 MiB"),
        "{:?}",
        evaluation.unknown
    );
}

#[test]
fn pam_auth_update_fills_the_templates_blocks() {
    let template = "# here are the per-package modules (the \"Primary\" block)\n$auth_primary\n# here's the fallback if no module succeeds\nauth\trequisite\t\t\tpam_deny.so\n# and here are more per-package modules (the \"Additional\" block)\n$auth_additional\n# end of pam-auth-update config\n";
    let session = template
        .replace("auth\t", "session\t")
        .replace("$auth", "$session");
    let unix = "Name: Unix authentication\nDefault: yes\nPriority: 256\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_unix.so nullok try_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_unix.so nullok\nSession-Type: Additional\nSession:\n\trequired\tpam_unix.so\n";
    let off = "Name: Off by default\nDefault: no\nPriority: 0\nAuth-Type: Primary\nAuth:\n\trequired\tpam_off.so\n";
    let mut files = vec![
        ("/usr/share/pam-configs/unix", unix, false),
        ("/usr/share/pam-configs/off", off, false),
        ("/usr/share/pam/common-auth", template, false),
        ("/usr/share/pam/common-account", template, false),
        ("/usr/share/pam/common-password", template, false),
    ];
    files.push(("/usr/share/pam/common-session", &session, false));
    files.push((
        "/usr/share/pam/common-session-noninteractive",
        &session,
        false,
    ));
    let evaluation = run("pam-auth-update --package\n", &image(&files));
    assert!(evaluation.unknown.is_empty(), "{:?}", evaluation.unknown);
    let file = |at: &str| {
        evaluation.effects.iter().find_map(|e| match e {
            Effect::Path {
                path,
                change: Change::File { bytes, .. },
            } if path == at => Some(String::from_utf8(bytes.clone()).unwrap()),
            _ => None,
        })
    };
    assert_eq!(
        file("/etc/pam.d/common-auth").unwrap(),
        "# here are the per-package modules (the \"Primary\" block)\nauth\t[success=1 default=ignore]\tpam_unix.so nullok\n# here's the fallback if no module succeeds\nauth\trequisite\t\t\tpam_deny.so\n# and here are more per-package modules (the \"Additional\" block)\n# end of pam-auth-update config\n"
    );
    assert!(
        file("/etc/pam.d/common-session")
            .unwrap()
            .contains("session\t[default=1]\t\t\tpam_permit.so\n# here's")
    );
    assert!(
        file("/etc/pam.d/common-session")
            .unwrap()
            .contains("session\trequired\tpam_unix.so \n")
    );
    assert_eq!(file("/var/lib/pam/seen").unwrap(), "unix\noff\n");
}

#[test]
fn pathological_nesting_is_reported_not_parsed() {
    let script = format!("{}true{}\n", "(".repeat(100_000), ")".repeat(100_000));
    let evaluation = run(&script, &image(&[]));
    assert_eq!(evaluation.unknown.len(), 1, "{:?}", evaluation.unknown);
    assert!(evaluation.unknown[0].reason.contains("nest too deeply"));
}
