//! DNS over HTTPS, in both forms servers offer: RFC 8484 wire format
//! (`application/dns-message`, POST) and the JSON API (`application/dns-json`,
//! GET `?name=&type=`). Queries go through a reqwest client of their own, built
//! with the outbound proxy and the system resolver (or `dns_bootstrap`) for the
//! server's own name: resolving it through itself could never start.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use url::Url;

use super::server::DohFormat;
use super::{Answer, LookupError};
use crate::upstream::BodyError;

const DNS_MESSAGE: &str = "application/dns-message";
const DNS_JSON: &str = "application/dns-json";
/// The largest DNS message; anything bigger is not an answer.
const MAX_ANSWER: usize = 65_535;

pub(super) struct DohBackend {
    url: Url,
    format: DohFormat,
    client: reqwest::Client,
}

/// One record type's answer: addresses and the smallest TTL among them.
type Records = (Vec<IpAddr>, u32);

impl DohBackend {
    pub(super) fn new(url: Url, format: DohFormat, client: reqwest::Client) -> Self {
        DohBackend {
            url,
            format,
            client,
        }
    }

    /// A and AAAA are asked at once; one family failing is fine if the other
    /// answers.
    pub(super) async fn lookup(&self, host: &str) -> Result<Answer, LookupError> {
        let (v4, v6) = tokio::join!(
            self.query(host, RecordType::A),
            self.query(host, RecordType::AAAA)
        );
        let (addrs, ttl) = match (v4, v6) {
            (Err(e), Err(_)) => return Err(LookupError::Other(e)),
            (Ok(a), Err(_)) | (Err(_), Ok(a)) => a,
            (Ok((mut a, ttl_a)), Ok((aaaa, ttl_aaaa))) => {
                let ttl = match (a.is_empty(), aaaa.is_empty()) {
                    (false, false) => ttl_a.min(ttl_aaaa),
                    (false, true) => ttl_a,
                    _ => ttl_aaaa,
                };
                a.extend(aaaa);
                (a, ttl)
            }
        };
        if addrs.is_empty() {
            return Err(LookupError::NoRecords);
        }
        Ok(Answer {
            addrs,
            ttl: Duration::from_secs(ttl.into()),
        })
    }

    async fn query(&self, host: &str, kind: RecordType) -> Result<Records, String> {
        match self.format {
            DohFormat::Wire => self.query_wire(host, kind).await,
            DohFormat::Json => self.query_json(host, kind).await,
        }
    }

    async fn query_wire(&self, host: &str, kind: RecordType) -> Result<Records, String> {
        let name = Name::from_ascii(format!("{host}."))
            .map_err(|e| format!("{host:?} is not a DNS name: {e}"))?;
        let mut query = Message::query();
        // RFC 8484 §4.1: id 0 makes identical queries cacheable by HTTP caches.
        query.metadata.id = 0;
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name, kind));
        let body = query
            .to_vec()
            .map_err(|e| format!("cannot encode the query: {e}"))?;
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, DNS_MESSAGE)
            .header(ACCEPT, DNS_MESSAGE)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let bytes = read_body(response).await?;
        let answer =
            Message::from_vec(&bytes).map_err(|e| format!("the answer is not DNS: {e}"))?;
        match answer.metadata.response_code {
            ResponseCode::NoError => {}
            // The name does not exist: no addresses, not a failure of the server.
            ResponseCode::NXDomain => return Ok((Vec::new(), 0)),
            code => return Err(format!("the server answered {code}")),
        }
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        // CNAME chains arrive with their final records in the same answer.
        for record in &answer.answers {
            let ip = match &record.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                _ => continue,
            };
            addrs.push(ip);
            ttl = ttl.min(record.ttl);
        }
        Ok((addrs, ttl))
    }

    async fn query_json(&self, host: &str, kind: RecordType) -> Result<Records, String> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("name", host)
            .append_pair("type", &kind.to_string());
        let response = self
            .client
            .get(url)
            .header(ACCEPT, DNS_JSON)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let bytes = read_body(response).await?;
        let answer: JsonAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the answer is not DNS JSON: {e}"))?;
        match answer.status {
            0 => {}
            3 => return Ok((Vec::new(), 0)),
            code => {
                return Err(format!(
                    "the server answered {}",
                    ResponseCode::from_low(code.try_into().unwrap_or(u8::MAX))
                ));
            }
        }
        let wanted = u16::from(kind);
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        for record in answer.answer.iter().filter(|r| r.kind == wanted) {
            let ip: IpAddr = record
                .data
                .trim()
                .parse()
                .map_err(|_| format!("the answer has a bad address {:?}", record.data))?;
            addrs.push(ip);
            ttl = ttl.min(record.ttl);
        }
        Ok((addrs, ttl))
    }
}

#[derive(serde::Deserialize)]
struct JsonAnswer {
    #[serde(rename = "Status")]
    status: u16,
    #[serde(rename = "Answer", default)]
    answer: Vec<JsonRecord>,
}

#[derive(serde::Deserialize)]
struct JsonRecord {
    #[serde(rename = "type")]
    kind: u16,
    #[serde(rename = "TTL", default)]
    ttl: u32,
    #[serde(default)]
    data: String,
}

async fn read_body(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the server answered HTTP {status}"));
    }
    match crate::upstream::read_limited(response, MAX_ANSWER as u64).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(
            BodyError::Transient(reason) | BodyError::Invalid(reason) | BodyError::Local(reason),
        ) => Err(format!("reading the answer failed: {reason}")),
    }
}

fn describe(error: &reqwest::Error) -> String {
    crate::upstream::describe_error(error)
}
