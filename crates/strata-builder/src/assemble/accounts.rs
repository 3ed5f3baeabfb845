//! `/etc/passwd` and `/etc/group` (and, once the image uses shadow
//! passwords, `/etc/shadow` and `/etc/gshadow`): the base's lines, then the
//! packages' and the recipe's accounts.
//!
//! Users are written into these files, never created by running `useradd`:
//! nothing from the image is executed.

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// The account files an image has so far (`None`: absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountFiles<'a> {
    pub passwd: Option<&'a str>,
    pub group: Option<&'a str>,
    pub shadow: Option<&'a str>,
    pub gshadow: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// Lines as the base had them, kept verbatim.
    passwd_lines: Vec<String>,
    group_lines: Vec<String>,
    users: Vec<Account>,
    groups: Vec<(String, u32)>,
    /// `/etc/shadow` and `/etc/gshadow` lines, when the image has them.
    shadow_lines: Option<Vec<String>>,
    gshadow_lines: Option<Vec<String>>,
    /// Days since the epoch, for the last-change field of new shadow lines:
    /// the build's epoch, so that the files are reproducible.
    days: u64,
    /// Ids promised to accounts created later (the lock's records): new
    /// accounts do not take them.
    reserved_uids: Vec<u32>,
    reserved_gids: Vec<u32>,
    /// Whether anything was added, i.e. whether the files must be written.
    changed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("user `{name}` already exists in the base with uid {existing}")]
    NameTaken { name: String, existing: u32 },
    #[error("uid {uid} already belongs to `{existing}` in the base")]
    UidTaken { uid: u32, existing: String },
}

impl Accounts {
    /// The image's accounts so far; for an empty base, `root` and `nobody`
    /// as every Debian-derived image has them. `epoch` dates shadow lines.
    pub fn from_files(files: AccountFiles, epoch: u64) -> Accounts {
        let AccountFiles {
            passwd,
            group,
            shadow,
            gshadow,
        } = files;
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        let mut accounts = Accounts {
            shadow_lines: shadow.map(lines),
            gshadow_lines: gshadow.map(lines),
            days: epoch / 86_400,
            ..Accounts::default()
        };
        match passwd {
            Some(text) => {
                for line in text.lines() {
                    accounts.passwd_lines.push(line.to_owned());
                    if let Some(account) = parse_passwd_line(line) {
                        accounts.users.push(account);
                    }
                }
            }
            None => {
                accounts.add_user("root", 0, 0, "/root", "/sbin/nologin");
                accounts.add_user("nobody", 65534, 65534, "/nonexistent", "/sbin/nologin");
            }
        }
        match group {
            Some(text) => {
                for line in text.lines() {
                    accounts.group_lines.push(line.to_owned());
                    let mut fields = line.split(':');
                    if let (Some(name), Some(_), Some(gid)) =
                        (fields.next(), fields.next(), fields.next())
                        && let Ok(gid) = gid.parse()
                    {
                        accounts.groups.push((name.to_owned(), gid));
                    }
                }
            }
            None => {
                accounts.add_group("root", 0);
                accounts.add_group("nogroup", 65534);
            }
        }
        // The defaults alone are not worth writing: only a user makes them so.
        accounts.changed = false;
        accounts
    }

    pub fn user(&self, name: &str) -> Option<&Account> {
        self.users.iter().find(|a| a.name == name)
    }

    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, g)| *g)
    }

    /// Adds a user and its primary group. A user the base already has with the
    /// same uid is left as it is.
    pub fn ensure_user(
        &mut self,
        name: &str,
        uid: u32,
        gid: u32,
        home: &str,
        shell: &str,
    ) -> Result<(), AccountError> {
        if let Some(existing) = self.user(name) {
            if existing.uid == uid {
                return Ok(());
            }
            return Err(AccountError::NameTaken {
                name: name.to_owned(),
                existing: existing.uid,
            });
        }
        if let Some(existing) = self.users.iter().find(|a| a.uid == uid) {
            return Err(AccountError::UidTaken {
                uid,
                existing: existing.name.clone(),
            });
        }
        self.add_user(name, uid, gid, home, shell);
        if !self.groups.iter().any(|(n, g)| n == name || *g == gid) {
            self.add_group(name, gid);
        }
        Ok(())
    }

    /// A system group, as `addgroup --system` makes it: the first free gid
    /// from 100 (adduser's `FIRST_SYSTEM_GID`) unless one is given. An
    /// existing group is kept.
    pub fn system_group(&mut self, name: &str, gid: Option<u32>) -> u32 {
        if let Some(existing) = self.group(name) {
            return existing;
        }
        let gid = gid
            .filter(|g| !self.groups.iter().any(|(_, x)| x == g))
            .unwrap_or_else(|| {
                let taken = self.groups.iter().map(|(_, g)| *g);
                first_free(100, taken.chain(self.reserved_gids.iter().copied()))
            });
        self.add_group(name, gid);
        gid
    }

    /// Keeps ids free for the accounts that will ask for them.
    pub fn reserve(&mut self, uid: Option<u32>, gid: u32) {
        self.reserved_uids.extend(uid);
        self.reserved_gids.push(gid);
    }

    /// A system user, as `adduser --system` makes it: the first free uid
    /// from 100 (`FIRST_SYSTEM_UID`), primary group `nogroup` unless it has
    /// its own or names one. An existing user is kept. `declared` are the
    /// ids the recipe gives it (`system-user`), which win.
    pub fn system_user(
        &mut self,
        user: &strata_debian::script::SystemUser,
        declared: Option<(u32, u32)>,
    ) {
        if self.user(&user.name).is_some() {
            return;
        }
        let uid = declared
            .map(|(uid, _)| uid)
            .or(user.uid)
            .filter(|u| !self.users.iter().any(|a| a.uid == *u))
            .unwrap_or_else(|| {
                let taken = self.users.iter().map(|a| a.uid);
                first_free(100, taken.chain(self.reserved_uids.iter().copied()))
            });
        let gid = if let Some((_, gid)) = declared {
            self.system_group(&user.name, Some(gid))
        } else if user.own_group {
            self.system_group(&user.name, None)
        } else {
            match &user.group {
                Some(group) => self.system_group(group, None),
                None => self.system_group("nogroup", Some(65534)),
            }
        };
        let home = user.home.as_deref().unwrap_or("/nonexistent");
        let shell = user.shell.as_deref().unwrap_or("/usr/sbin/nologin");
        let gecos = user.gecos.as_deref().unwrap_or_default();
        self.add_shadow(&user.name);
        self.passwd_lines.push(format!(
            "{}:x:{uid}:{gid}:{gecos}:{home}:{shell}",
            user.name
        ));
        self.users.push(Account {
            name: user.name.clone(),
            uid,
            gid,
            home: home.to_owned(),
            shell: shell.to_owned(),
        });
        self.changed = true;
    }

    /// `adduser USER GROUP`: USER joins GROUP's member list.
    pub fn add_member(&mut self, user: &str, group: &str) {
        for line in &mut self.group_lines {
            if line.split(':').next() != Some(group) {
                continue;
            }
            let members = line.rsplit(':').next().unwrap_or_default();
            if members.split(',').any(|m| m == user) {
                return;
            }
            if !members.is_empty() {
                line.push(',');
            }
            line.push_str(user);
            self.changed = true;
            return;
        }
    }

    /// Shadow passwords, as `shadowconfig on` (`pwconv`, `grpconv`) turns
    /// them on: each password field moves to `/etc/shadow` or `/etc/gshadow`
    /// and becomes `x`.
    pub fn use_shadow(&mut self) {
        if self.shadow_lines.is_some() {
            return;
        }
        let days = self.days;
        let shadow = move_passwords(&mut self.passwd_lines, 2, |f, password| {
            format!("{}:{password}:{days}:0:99999:7:::", f[0])
        });
        let gshadow = move_passwords(&mut self.group_lines, 4, |f, password| {
            format!("{}:{password}::{}", f[0], f[3])
        });
        self.shadow_lines = Some(shadow);
        self.gshadow_lines = Some(gshadow);
        self.changed = true;
    }

    /// The files to write, relative to the root, with their mode and group:
    /// `/etc/shadow` and `/etc/gshadow` only when the image uses them.
    pub fn files(&self) -> Vec<(&'static str, Vec<u8>, u32, u32)> {
        let mut out = vec![
            ("etc/passwd", self.passwd(), 0o644, 0),
            ("etc/group", self.group_file(), 0o644, 0),
        ];
        if let Some((shadow, gshadow)) = self.shadow_files() {
            // Readable by the `shadow` group, as Debian has them.
            let gid = self.group("shadow").unwrap_or(0);
            out.push(("etc/shadow", shadow, 0o640, gid));
            out.push(("etc/gshadow", gshadow, 0o640, gid));
        }
        out
    }

    fn shadow_files(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        Some((
            render(self.shadow_lines.as_ref()?),
            render(self.gshadow_lines.as_ref()?),
        ))
    }

    fn add_user(&mut self, name: &str, uid: u32, gid: u32, home: &str, shell: &str) {
        self.add_shadow(name);
        self.passwd_lines
            .push(format!("{name}:x:{uid}:{gid}:{name}:{home}:{shell}"));
        self.users.push(Account {
            name: name.to_owned(),
            uid,
            gid,
            home: home.to_owned(),
            shell: shell.to_owned(),
        });
        self.changed = true;
    }

    /// A new account's shadow line: no password (`!`), as adduser leaves it.
    fn add_shadow(&mut self, name: &str) {
        if let Some(shadow) = &mut self.shadow_lines {
            shadow.push(format!("{name}:!:{}::::::", self.days));
        }
    }

    fn add_group(&mut self, name: &str, gid: u32) {
        if let Some(gshadow) = &mut self.gshadow_lines {
            gshadow.push(format!("{name}:!::"));
        }
        self.group_lines.push(format!("{name}:x:{gid}:"));
        self.groups.push((name.to_owned(), gid));
        self.changed = true;
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn passwd(&self) -> Vec<u8> {
        render(&self.passwd_lines)
    }

    pub fn group_file(&self) -> Vec<u8> {
        render(&self.group_lines)
    }
}

/// What `pwconv` and `grpconv` do to each line with at least `min_fields`:
/// its password goes to the shadow line `shadow_line` makes (`*` for one
/// that was already `x`), and the line keeps `x`.
fn move_passwords(
    lines: &mut [String],
    min_fields: usize,
    shadow_line: impl Fn(&[&str], &str) -> String,
) -> Vec<String> {
    let mut shadow = Vec::new();
    for line in lines {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() < min_fields {
            continue;
        }
        let password = if fields[1] == "x" { "*" } else { fields[1] };
        shadow.push(shadow_line(&fields, password));
        fields[1] = "x";
        *line = fields.join(":");
    }
    shadow
}

/// The lowest id from `start` that `taken` does not hold.
fn first_free(start: u32, taken: impl Iterator<Item = u32>) -> u32 {
    let taken: std::collections::BTreeSet<u32> = taken.collect();
    (start..).find(|id| !taken.contains(id)).unwrap_or(start)
}

fn parse_passwd_line(line: &str) -> Option<Account> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(Account {
        name: f[0].to_owned(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].to_owned(),
        shell: f[6].to_owned(),
    })
}

fn render(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_the_base() {
        let mut a = Accounts::from_files(
            AccountFiles {
                passwd: Some("root:x:0:0:root:/root:/bin/bash\n"),
                group: Some("root:x:0:\n"),
                ..AccountFiles::default()
            },
            0,
        );
        a.ensure_user("analyst", 10001, 10001, "/home/analyst", "/sbin/nologin")
            .unwrap();
        assert_eq!(
            String::from_utf8(a.passwd()).unwrap(),
            "root:x:0:0:root:/root:/bin/bash\nanalyst:x:10001:10001:analyst:/home/analyst:/sbin/nologin\n"
        );
        assert_eq!(
            String::from_utf8(a.group_file()).unwrap(),
            "root:x:0:\nanalyst:x:10001:\n"
        );
        assert!(a.ensure_user("root", 5, 5, "/", "/").is_err());
        assert!(a.ensure_user("other", 10001, 5, "/", "/").is_err());
    }

    #[test]
    fn shadow_passwords_as_pwconv_and_adduser_write_them() {
        let mut a = Accounts::from_files(
            AccountFiles {
                passwd: Some("root:*:0:0:root:/root:/bin/bash\n"),
                group: Some("root:*:0:\nstaff:*:50:alice\n"),
                ..AccountFiles::default()
            },
            20_785 * 86_400 + 5,
        );
        a.use_shadow();
        a.ensure_user("analyst", 10001, 10001, "/home/analyst", "/sbin/nologin")
            .unwrap();
        let (shadow, gshadow) = a.shadow_files().unwrap();
        assert_eq!(
            String::from_utf8(shadow).unwrap(),
            "root:*:20785:0:99999:7:::\nanalyst:!:20785::::::\n"
        );
        assert_eq!(
            String::from_utf8(gshadow).unwrap(),
            "root:*::\nstaff:*::alice\nanalyst:!::\n"
        );
        assert!(
            String::from_utf8(a.passwd())
                .unwrap()
                .starts_with("root:x:0:0:")
        );
        assert!(
            String::from_utf8(a.group_file())
                .unwrap()
                .starts_with("root:x:0:\n")
        );
    }

    #[test]
    fn scratch_has_root_and_nobody() {
        let a = Accounts::from_files(AccountFiles::default(), 0);
        assert_eq!(a.user("nobody").unwrap().uid, 65534);
        assert_eq!(a.group("root"), Some(0));
    }
}
