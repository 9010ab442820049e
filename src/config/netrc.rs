//! `.netrc` files, read as the go command reads them: `machine`, `login` and
//! `password` tokens in pairs, `macdef` bodies skipped up to the next blank
//! line, and nothing after `default` (a default entry would hand the same
//! credentials to every host, so the go command ignores it, and so do we).

use std::path::Path;

use url::Url;

use super::private::Secret;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Netrc {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    machine: String,
    login: String,
    password: Secret,
}

impl Netrc {
    pub fn read(path: &Path) -> std::io::Result<Netrc> {
        std::fs::read_to_string(path).map(|text| Netrc::parse(&text))
    }

    pub fn parse(text: &str) -> Netrc {
        let mut entries = Vec::new();
        let (mut machine, mut login, mut password) = (None, None, None);
        let mut in_macro = false;
        for line in text.split('\n') {
            if in_macro {
                // A macro body ends at the first empty line.
                in_macro = !line.trim_end_matches('\r').is_empty();
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mut i = 0;
            while i + 1 < fields.len() {
                let value = fields[i + 1];
                match fields[i] {
                    "machine" => {
                        machine = Some(value);
                        login = None;
                        password = None;
                    }
                    "login" => login = Some(value),
                    "password" => password = Some(value),
                    "macdef" => in_macro = true,
                    _ => {}
                }
                if let (Some(m), Some(l), Some(p)) = (machine, login, password) {
                    entries.push(Entry {
                        machine: m.to_owned(),
                        login: l.to_owned(),
                        password: Secret::new(p),
                    });
                    (machine, login, password) = (None, None, None);
                }
                i += 2;
            }
            // "There can be only one default token, and it must be after all
            // machine tokens."
            if fields.get(i) == Some(&"default") {
                break;
            }
        }
        Netrc { entries }
    }

    /// The credentials for `url`'s host: an entry for `host:port` (when the URL
    /// names a port) first, then one for the bare host; the first entry of a
    /// machine wins.
    pub fn lookup(&self, url: &Url) -> Option<(&str, &Secret)> {
        let host = url.host_str()?;
        let with_port = url.port().map(|port| format!("{host}:{port}"));
        with_port
            .iter()
            .map(String::as_str)
            .chain([host])
            .find_map(|machine| self.entries.iter().find(|e| e.machine == machine))
            .map(|e| (e.login.as_str(), &e.password))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(netrc: &'a Netrc, url: &str) -> Option<(&'a str, &'a str)> {
        netrc
            .lookup(&Url::parse(url).unwrap())
            .map(|(login, password)| (login, password.expose()))
    }

    #[test]
    fn the_go_commands_netrc_vectors() {
        // The cases of cmd/go/internal/auth's netrc test.
        let netrc = Netrc::parse(
            "machine incomplete
password none

machine api.github.com
  login user
  password pwd

machine incomlete.host
  login justlogin

machine test.host
login user2
password pwd2

machine oneline login user3 password pwd3

machine ignore.host macdef ignore
  login nobody
  password nothing

machine hasmacro.too macdef ignore-next-lines login user4 password pwd4
  login nobody
  password nothing

default
login anonymous
password gopher@golang.org

machine after.default
login oops
password too-late-in-file
",
        );
        let got: Vec<(&str, &str, &str)> = netrc
            .entries
            .iter()
            .map(|e| (e.machine.as_str(), e.login.as_str(), e.password.expose()))
            .collect();
        assert_eq!(
            got,
            [
                ("api.github.com", "user", "pwd"),
                ("test.host", "user2", "pwd2"),
                ("oneline", "user3", "pwd3"),
                ("hasmacro.too", "user4", "pwd4"),
            ]
        );
    }

    #[test]
    fn lookup_by_host_and_port() {
        let netrc = Netrc::parse(
            "machine 127.0.0.1:8443 login a password pa\n\
             machine 127.0.0.1 login b password pb\n\
             machine 127.0.0.1 login c password pc\n\
             machine [::1]:9 login d password pd\n",
        );
        assert_eq!(
            lookup(&netrc, "https://127.0.0.1:8443/go"),
            Some(("a", "pa"))
        );
        assert_eq!(
            lookup(&netrc, "https://127.0.0.1:9999/go"),
            Some(("b", "pb"))
        );
        assert_eq!(lookup(&netrc, "https://127.0.0.1/"), Some(("b", "pb")));
        assert_eq!(lookup(&netrc, "http://[::1]:9/"), Some(("d", "pd")));
        assert_eq!(lookup(&netrc, "https://other.example/"), None);
        assert!(Netrc::parse("default login x password y\n").is_empty());
        assert!(Netrc::parse("").is_empty());
    }

    #[test]
    fn windows_line_ends_and_macros() {
        let netrc = Netrc::parse(
            "macdef init\r\ncd /pub\r\n\r\nmachine h.example\r\nlogin u\r\npassword p\r\n",
        );
        assert_eq!(lookup(&netrc, "https://h.example"), Some(("u", "p")));
    }

    #[test]
    fn secrets_are_not_printed() {
        let netrc = Netrc::parse("machine h login u password hunter2\n");
        assert!(!format!("{netrc:?}").contains("hunter2"));
    }
}
