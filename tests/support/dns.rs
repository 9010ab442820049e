//! A DNS server on 127.0.0.1 answering from a table the test fills, over
//! UDP and TCP (one port), DNS over TLS, DNS over HTTPS (RFC 8484, hickory's
//! server), DNS over QUIC, and the JSON API (`application/dns-json`). It
//! records every question with the transport it came over, so a test can tell
//! that (and how) the proxy really used it.
//!
//! Certificates are for `dns.goproxy.test`, `localhost` and `127.0.0.1`,
//! signed by the test CA.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::tls::TestCa;

/// The name the DNS server's certificate is for, and no resolver but the
/// test's knows. Test names are under `.test` (RFC 6761), not `.invalid`:
/// resolvers answer `.invalid` themselves without asking any server.
pub const DNS_NAME: &str = "dns.goproxy.test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Answer,
    /// Every question gets SERVFAIL.
    ServFail,
    /// Questions are never answered.
    Silent,
}

/// One question the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub name: String,
    /// `A` or `AAAA`.
    pub kind: String,
    /// `udp`, `tcp`, `tls`, `https`, `quic` or `json`.
    pub via: String,
}

#[derive(Default)]
struct Table {
    records: HashMap<String, Vec<(IpAddr, u32)>>,
    asked: Vec<Asked>,
    mode: Option<Mode>,
}

#[derive(Clone)]
pub struct TestDns {
    table: Arc<Mutex<Table>>,
    /// UDP and TCP.
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub https: SocketAddr,
    pub quic: SocketAddr,
    /// The JSON API, over HTTPS at `/resolve`.
    pub json: SocketAddr,
    _tasks: Arc<Tasks>,
}

/// Aborting the task that owns the hickory server drops it, which stops
/// every listener it runs.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl TestDns {
    pub async fn start(ca: &TestCa) -> TestDns {
        let table = Arc::new(Mutex::new(Table::default()));
        let names = [DNS_NAME, "localhost", "127.0.0.1"];
        let mut server = hickory_server::Server::new(Handler(Arc::clone(&table)));

        let (udp, tcp) = udp_and_tcp_on_one_port().await;
        let plain = udp.local_addr().expect("addr");
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 16);

        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let tls = tls_listener.local_addr().expect("addr");
        server
            .register_tls_listener_with_tls_config(
                tls_listener,
                Duration::from_secs(10),
                ca.server_config(&names, &[b"dot"]),
            )
            .expect("DoT listener");

        let https_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let https = https_listener.local_addr().expect("addr");
        server
            .register_https_listener_with_tls_config(
                https_listener,
                Duration::from_secs(10),
                ca.server_config(&names, &[b"h2"]),
                None,
                "/dns-query".to_owned(),
            )
            .expect("DoH listener");

        let quic_socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let quic = quic_socket.local_addr().expect("addr");
        server
            .register_quic_listener_and_tls_config(
                quic_socket,
                Duration::from_secs(10),
                ca.server_config(&names, &[b"doq"]),
            )
            .expect("DoQ listener");

        let running = tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        let (json, json_task) = serve_json(ca, Arc::clone(&table)).await;
        TestDns {
            table,
            plain,
            tls,
            https,
            quic,
            json,
            _tasks: Arc::new(Tasks(vec![running, json_task])),
        }
    }

    /// Answers `name` with `ip` (A or AAAA by its family) for `ttl` seconds.
    pub fn add(&self, name: &str, ip: &str, ttl: u32) -> &Self {
        let ip: IpAddr = ip.parse().expect("IP address");
        self.lock()
            .records
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push((ip, ttl));
        self
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = Some(mode);
    }

    /// Every question so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.lock().asked.clone()
    }

    /// The questions about `name`.
    pub fn asked_about(&self, name: &str) -> Vec<Asked> {
        self.asked()
            .into_iter()
            .filter(|a| a.name == name)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn udp_and_tcp_on_one_port() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// What the table says about one question: None for an unknown name.
fn answer(
    table: &Mutex<Table>,
    name: &str,
    kind: RecordType,
    via: &str,
) -> (Mode, Option<Vec<(IpAddr, u32)>>) {
    let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    table.asked.push(Asked {
        name: name.clone(),
        kind: kind.to_string(),
        via: via.to_owned(),
    });
    let mode = table.mode.unwrap_or(Mode::Answer);
    let found = table.records.get(&name).map(|records| {
        records
            .iter()
            .filter(|(ip, _)| match kind {
                RecordType::A => ip.is_ipv4(),
                RecordType::AAAA => ip.is_ipv6(),
                _ => false,
            })
            .copied()
            .collect()
    });
    (mode, found)
}

struct Handler(Arc<Mutex<Table>>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let silent = ResponseInfo::from(Header {
            metadata: Metadata::response_from_request(&request.metadata),
            counts: HeaderCounts::default(),
        });
        let Ok(info) = request.request_info() else {
            return silent;
        };
        let via = match request.protocol() {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Https => "https",
            Protocol::Quic => "quic",
            _ => "other",
        };
        let query = info.query;
        let name = query.name().to_string();
        let (mode, found) = answer(&self.0, &name, query.query_type(), via);
        let builder = MessageResponseBuilder::from_message_request(request);
        let sent = match (mode, found) {
            (Mode::Silent, _) => return silent,
            (Mode::ServFail, _) => {
                let message = builder.error_msg(&request.metadata, ResponseCode::ServFail);
                response.send_response(message).await
            }
            (Mode::Answer, None) => {
                let message = builder.error_msg(&request.metadata, ResponseCode::NXDomain);
                response.send_response(message).await
            }
            (Mode::Answer, Some(found)) => {
                let owner = Name::from_ascii(&name).expect("query name");
                let records: Vec<Record> = found
                    .into_iter()
                    .map(|(ip, ttl)| {
                        let data = match ip {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(owner.clone(), ttl, data)
                    })
                    .collect();
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = true;
                let message = builder.build(metadata, records.iter(), [], [], []);
                response.send_response(message).await
            }
        };
        sent.unwrap_or(silent)
    }
}

/// The JSON API (Google's `/resolve`, Cloudflare's `application/dns-json`),
/// over HTTPS with HTTP/1.1 and HTTP/2.
async fn serve_json(
    ca: &TestCa,
    table: Arc<Mutex<Table>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    async fn resolve(
        State(table): State<Arc<Mutex<Table>>>,
        headers: HeaderMap,
        Query(params): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        let accepts = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/dns-json"));
        let (Some(name), Some(kind)) = (params.get("name"), params.get("type")) else {
            return (StatusCode::BAD_REQUEST, "name and type are required").into_response();
        };
        if !accepts {
            return (StatusCode::NOT_ACCEPTABLE, "ask for application/dns-json").into_response();
        }
        let kind = match kind.as_str() {
            "A" | "1" => RecordType::A,
            "AAAA" | "28" => RecordType::AAAA,
            _ => return (StatusCode::BAD_REQUEST, "unsupported type").into_response(),
        };
        let (mode, found) = answer(&table, name, kind, "json");
        let body = match (mode, found) {
            (Mode::Silent, _) => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            (Mode::ServFail, _) => serde_json::json!({"Status": 2}),
            (Mode::Answer, None) => serde_json::json!({"Status": 3}),
            (Mode::Answer, Some(found)) => {
                let answers: Vec<_> = found
                    .into_iter()
                    .map(|(ip, ttl)| {
                        serde_json::json!({
                            "name": format!("{name}."),
                            "type": u16::from(kind),
                            "TTL": ttl,
                            "data": ip.to_string(),
                        })
                    })
                    .collect();
                serde_json::json!({"Status": 0, "Answer": answers})
            }
        };
        (
            [(header::CONTENT_TYPE, "application/dns-json")],
            body.to_string(),
        )
            .into_response()
    }

    let app = axum::Router::new()
        .route("/resolve", axum::routing::get(resolve))
        .with_state(table);
    let config = ca.server_config(&[DNS_NAME, "localhost", "127.0.0.1"], &[b"h2", b"http/1.1"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (addr, task)
}
