//! A SOCKS5 server (RFC 1928, with RFC 1929 username/password) on 127.0.0.1
//! that really tunnels, and records what each client asked for: the address
//! type and address (an IP for `socks5://`, a host name for `socks5h://`) and
//! the credentials it sent. Host names are resolved from a table the test
//! gives, never through real DNS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One CONNECT request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksRequest {
    /// 1 = IPv4, 3 = host name, 4 = IPv6.
    pub atyp: u8,
    pub host: String,
    pub port: u16,
    /// The username and password the client authenticated with.
    pub credentials: Option<(String, String)>,
}

#[derive(Default)]
struct Log {
    requests: Vec<SocksRequest>,
    auth_failures: usize,
}

pub struct SocksServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

struct Config {
    credentials: Option<(String, String)>,
    names: HashMap<String, IpAddr>,
}

impl SocksServer {
    /// `credentials`: require this username and password (otherwise no
    /// authentication). `names`: how host names of `socks5h` requests resolve.
    pub async fn start(credentials: Option<(&str, &str)>, names: &[(&str, &str)]) -> SocksServer {
        let config = Arc::new(Config {
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            names: names
                .iter()
                .map(|(n, ip)| ((*n).to_owned(), ip.parse().expect("IP address")))
                .collect(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SOCKS");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Log::default()));
        let task_log = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (config, log) = (Arc::clone(&config), Arc::clone(&task_log));
                tokio::spawn(async move {
                    let _ = serve(client, &config, &log).await;
                });
            }
        });
        SocksServer { addr, log, task }
    }

    /// `scheme://[user:password@]127.0.0.1:port`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("{scheme}://{user}:{password}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    pub fn requests(&self) -> Vec<SocksRequest> {
        self.lock().requests.clone()
    }

    pub fn auth_failures(&self) -> usize {
        self.lock().auth_failures
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SocksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, config: &Config, log: &Mutex<Log>) -> std::io::Result<()> {
    // Greeting: VER NMETHODS METHODS...
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 {
        return Ok(());
    }
    let wanted = if config.credentials.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, wanted]).await?;

    let mut credentials = None;
    if let Some((user, password)) = &config.credentials {
        // RFC 1929: VER ULEN UNAME PLEN PASSWD
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut got_user = vec![0u8; usize::from(ver_len[1])];
        client.read_exact(&mut got_user).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut got_password = vec![0u8; usize::from(plen[0])];
        client.read_exact(&mut got_password).await?;
        let got = (
            String::from_utf8_lossy(&got_user).into_owned(),
            String::from_utf8_lossy(&got_password).into_owned(),
        );
        if got.0 != *user || got.1 != *password {
            log.lock().unwrap_or_else(|e| e.into_inner()).auth_failures += 1;
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        client.write_all(&[1, 0]).await?;
        credentials = Some(got);
    }

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let atyp = request[3];
    let host = match atyp {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            Ipv6Addr::from(ip).to_string()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push(SocksRequest {
            atyp,
            host: host.clone(),
            port,
            credentials,
        });

    let target_ip = match host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => config.names.get(&host).copied(),
    };
    let upstream = match (request[1], target_ip) {
        (1, Some(ip)) => TcpStream::connect(SocketAddr::new(ip, port)).await.ok(),
        _ => None,
    };
    let Some(mut upstream) = upstream else {
        // 4: host unreachable.
        client.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
