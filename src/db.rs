//! The DB as the binary opens it: which one a role follows (`--data-dir` for the embedded DB, or
//! `--etcd`), and `dragonflow db`, the embedded DB's maintenance while no process has it open.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use control::db::Db;

/// The embedded DB's data directory unless --data-dir says.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dragonflow";

/// Which DB: the embedded one in a data directory, or etcd.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The embedded DB's data directory (ignored with --etcd).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// etcd endpoints (http://127.0.0.1:2379, repeatable) instead of the embedded DB.
    #[arg(long)]
    etcd: Vec<String>,
    /// The key prefix in etcd.
    #[arg(long, default_value = "dragonflow")]
    etcd_prefix: String,
}

impl DbArgs {
    pub fn open(&self) -> Result<Arc<dyn Db>> {
        Ok(if self.etcd.is_empty() {
            std::fs::create_dir_all(&self.data_dir).with_context(|| format!("{}", self.data_dir.display()))?;
            Arc::new(control::db::embedded::EmbeddedDb::open(&self.data_dir).context("opening the embedded DB")?)
        } else {
            Arc::new(control::db::etcd::EtcdDb::connect(&self.etcd, &self.etcd_prefix).context("connecting to etcd")?)
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Mend a log the embedded DB refuses to start on: keep every record before the first corrupt one,
    /// move the rest to log.corrupt-<offset> beside it (nothing is deleted), and print what was done.
    Repair {
        /// The embedded DB's data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

pub fn run(c: &DbCommand) -> Result<()> {
    match c {
        DbCommand::Repair { data_dir } => {
            let report = control::db::embedded::EmbeddedDb::repair(data_dir)
                .with_context(|| format!("repairing the embedded DB in {}", data_dir.display()))?;
            println!("{report}");
            Ok(())
        }
    }
}
