//! Label generation: minting signed unique label codes and laying them out as printable PDFs, in bulk.
//!
//! The crate is part of the workspace layout from the start so that its place in the dependency graph
//! (`server` → `label-gen` → `suyuan-core`) is fixed; minting arrives with the labels work.
