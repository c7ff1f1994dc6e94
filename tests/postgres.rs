//! A throwaway Postgres for the store tests: `initdb` + `pg_ctl` run as the
//! `postgres` user (`runuser -u postgres --`) in a temporary directory owned
//! by it, on a free port, stopped and removed by [`Postgres`]'s drop. The
//! binaries come from `scripts/test` (Debian's postgresql); without them
//! the test fails saying so, never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the PostgreSQL binaries are: `PATH` (the CI image links them into
/// /usr/local/bin), then Debian's `/usr/lib/postgresql/<version>/bin`,
/// newest version first.
fn binary(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by(|a, b| b.cmp(a));
    dirs.extend(debian);
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH or under /usr/lib/postgresql/*/bin: run scripts/test, which installs PostgreSQL (Debian's postgresql package)"
            )
        })
}

fn run_as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} as postgres: {e} (scripts/test sets this up)",
                program.display()
            )
        })
}

fn check(what: &str, output: Output) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running Postgres cluster of one test.
pub struct Postgres {
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// initdb, then start on a free port (waits until it accepts
    /// connections, at most 30 s).
    pub fn start() -> Postgres {
        let initdb = binary("initdb");
        let dir = std::env::temp_dir().join(format!("dutycard-pg-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        check(
            "chown",
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .output()
                .expect("chown runs"),
        );
        let data = dir.join("data");
        check(
            "initdb",
            run_as_postgres(
                &initdb,
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            ),
        );
        let port = free_port();
        let pg = Postgres { dir, port };
        pg.start_again();
        pg
    }

    /// Starts the (stopped) cluster again on the same port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        check(
            "pg_ctl start",
            run_as_postgres(
                &binary("pg_ctl"),
                &[
                    "-D",
                    self.data().to_str().unwrap(),
                    "-l",
                    self.dir.join("log").to_str().unwrap(),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ],
            ),
        );
    }

    /// Stops the cluster (fast: open connections are cut).
    pub fn stop(&self) {
        check("pg_ctl stop", self.stop_output("fast"));
    }

    fn stop_output(&self, mode: &str) -> Output {
        run_as_postgres(
            &binary("pg_ctl"),
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `psql` on its `postgres` database (quiet, unaligned, stopping at
    /// the first error), for a test that needs a second session.
    pub fn psql(&self) -> Command {
        let mut command = Command::new(binary("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .env("PGCONNECT_TIMEOUT", "10");
        command
    }

    /// The URL of its `postgres` database (trust auth on loopback).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Already stopped is fine; then the directory goes.
        let _ = self.stop_output("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}
