//! Workspace-level tests live in `integration/` as one test binary (`cargo test -p suyuan-tests`); this
//! library is empty.
