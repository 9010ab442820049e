//! Signed notes (`golang.org/x/mod/sumdb/note`).
