//! Admission of code: everything checked once, when a module is loaded, so that running it can
//! only fail for reasons that are the same on every peer.

use std::collections::BTreeSet;

use wasmi::{ExternType, Module};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

use super::abi::{ABI_MODULE, IMPORTS};
use super::error::ContractError;
use super::exec::{CALL_EXPORT, INIT_EXPORT, MEMORY_EXPORT};
use super::params::ConsensusParams;

/// Structural checks wasmi's validator does not do for us, on the raw bytes, before compiling:
/// no start function, at most one table within the element limit, exactly one defined 32-bit
/// unshared memory within the page limit.
///
/// Also decides whether the module is *resettable* (returned as `true`): an instance of it can be
/// put back exactly into the state a fresh instantiation gives by restoring its memory bytes and
/// its exported globals, because
/// - every mutable global is exported (so the host can reach it; rustc's `__stack_pointer` is
///   exported by `scripts/build-contracts.sh`), no global is imported, and
/// - no function body contains an operator that changes instance state other than memory and
///   globals: `table.set`, `table.grow`, `table.fill`, `table.copy`, `table.init`, `elem.drop`,
///   `data.drop` or `memory.init` (tables and segments then stay as instantiation left them).
///
/// The memory's size is checked when the instance is put back (a grown memory is not reset but
/// dropped). A module that is not resettable still runs, in a fresh instance per call.
pub(crate) fn prescan(wasm: &[u8], params: &ConsensusParams) -> Result<bool, ContractError> {
    if wasm.len() as u64 > u64::from(params.code_bytes_max) {
        return Err(ContractError::ModuleLimit {
            what: "code bytes",
            value: wasm.len() as u64,
            max: u64::from(params.code_bytes_max),
        });
    }
    let invalid = |e: wasmparser::BinaryReaderError| ContractError::InvalidModule {
        reason: e.to_string(),
    };
    let mut memories = 0u64;
    let mut tables = 0u64;
    let mut resettable = true;
    // Global indices: imported globals come first (there are none in a resettable module).
    let mut mutable_globals = BTreeSet::new();
    let mut exported_globals = BTreeSet::new();
    let mut globals = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::StartSection { .. } => return Err(ContractError::StartFunction),
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    memories += 1;
                    if memory.memory64 || memory.shared {
                        return Err(ContractError::InvalidModule {
                            reason: "memory64 and shared memories are not allowed".into(),
                        });
                    }
                    let max = u64::from(params.memory_pages_max);
                    if memory.initial > max {
                        return Err(ContractError::ModuleLimit {
                            what: "initial memory pages",
                            value: memory.initial,
                            max,
                        });
                    }
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(invalid)?;
                    tables += 1;
                    // Refused here whatever wasmi's features: a build whose wasmi got
                    // `memory64` through feature unification must not accept what others refuse.
                    if table.ty.table64 {
                        return Err(ContractError::InvalidModule {
                            reason: "64-bit tables are not allowed".into(),
                        });
                    }
                    let max = u64::from(params.table_elements_max);
                    if table.ty.initial > max {
                        return Err(ContractError::ModuleLimit {
                            what: "initial table elements",
                            value: table.ty.initial,
                            max,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    if matches!(import.map_err(invalid)?.ty, TypeRef::Global(_)) {
                        resettable = false;
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    if global.map_err(invalid)?.ty.mutable {
                        mutable_globals.insert(globals);
                    }
                    globals = globals.saturating_add(1);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.kind == ExternalKind::Global {
                        exported_globals.insert(export.index);
                    }
                }
            }
            // Function bodies are validated by wasmi; here they are only scanned for operators
            // that would make an instance unresettable.
            Payload::CodeSectionEntry(body) if resettable => {
                for op in body.get_operators_reader().map_err(invalid)? {
                    if changes_tables_or_segments(&op.map_err(invalid)?) {
                        resettable = false;
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    if tables > 1 {
        return Err(ContractError::ModuleLimit {
            what: "tables",
            value: tables,
            max: 1,
        });
    }
    if memories != 1 {
        return Err(ContractError::ModuleLimit {
            what: "defined memories (exactly one required)",
            value: memories,
            max: 1,
        });
    }
    Ok(resettable && mutable_globals.is_subset(&exported_globals))
}

/// Whether `op` changes a table or a segment's dropped flag (see [`prescan`]).
fn changes_tables_or_segments(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::TableSet { .. }
            | Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::ElemDrop { .. }
            | Operator::DataDrop { .. }
            | Operator::MemoryInit { .. }
    )
}

/// Checks a compiled module's imports and exports against the ABI.
pub(crate) fn check_interface(module: &Module) -> Result<(), ContractError> {
    for import in module.imports() {
        let forbidden = || ContractError::ForbiddenImport {
            module: import.module().into(),
            name: import.name().into(),
        };
        if import.module() != ABI_MODULE {
            return Err(forbidden());
        }
        let ExternType::Func(ty) = import.ty() else {
            return Err(forbidden());
        };
        let matches = IMPORTS.iter().any(|(name, params, results)| {
            *name == import.name() && ty.params() == *params && ty.results() == *results
        });
        if !matches {
            return Err(forbidden());
        }
    }
    match module.get_export(MEMORY_EXPORT) {
        Some(ExternType::Memory(_)) => {}
        _ => {
            return Err(ContractError::MissingExport {
                name: MEMORY_EXPORT,
            });
        }
    }
    let is_entry = |export: Option<ExternType>| match export {
        Some(ExternType::Func(ty)) => ty.params().is_empty() && ty.results().is_empty(),
        _ => false,
    };
    if !is_entry(module.get_export(CALL_EXPORT)) {
        return Err(ContractError::MissingExport { name: CALL_EXPORT });
    }
    if module.get_export(INIT_EXPORT).is_some() && !is_entry(module.get_export(INIT_EXPORT)) {
        return Err(ContractError::MissingExport { name: INIT_EXPORT });
    }
    Ok(())
}
