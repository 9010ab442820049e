//! Tiled transparency logs (`golang.org/x/mod/sumdb/tlog`).
