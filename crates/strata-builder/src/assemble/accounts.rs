//! `/etc/passwd` and `/etc/group`: the base's lines, then the recipe's users.
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

#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// Lines as the base had them, kept verbatim.
    passwd_lines: Vec<String>,
    group_lines: Vec<String>,
    users: Vec<Account>,
    groups: Vec<(String, u32)>,
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
    /// The base's accounts; for an empty base, `root` and `nobody` as every
    /// Debian-derived image has them.
    pub fn from_base(passwd: Option<&str>, group: Option<&str>) -> Accounts {
        let mut accounts = Accounts::default();
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
            .unwrap_or_else(|| first_free(100, self.groups.iter().map(|(_, g)| *g)));
        self.add_group(name, gid);
        gid
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
            .unwrap_or_else(|| first_free(100, self.users.iter().map(|a| a.uid)));
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

    fn add_user(&mut self, name: &str, uid: u32, gid: u32, home: &str, shell: &str) {
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

    fn add_group(&mut self, name: &str, gid: u32) {
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
        let mut a = Accounts::from_base(
            Some("root:x:0:0:root:/root:/bin/bash\n"),
            Some("root:x:0:\n"),
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
    fn scratch_has_root_and_nobody() {
        let a = Accounts::from_base(None, None);
        assert_eq!(a.user("nobody").unwrap().uid, 65534);
        assert_eq!(a.group("root"), Some(0));
    }
}
