//! Outbound networking settings in effect for every connection the proxy makes:
//! which proxy a request goes through (`proxy`), how host names are resolved
//! (`dns`), and which extra certificate authorities are trusted (`ca`).
//! `upstream::client` builds the HTTP clients from them.

pub mod ca;
pub mod dns;
mod no_proxy;
pub mod proxy;
