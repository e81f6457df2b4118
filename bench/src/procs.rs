//! Child processes: start pinned, wait for the port, read CPU time and RSS of the whole process
//! tree from `/proc` (nginx runs a master and workers), stop on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat`; 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// A started target or helper; killed (the whole tree) when dropped.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    child: Child,
}

impl Process {
    /// Starts `program args` pinned to `cpu` (if any) with stdout and stderr to files in
    /// `scratch` (Portico's access log goes to a file that nobody reads, as `/dev/null` would).
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        cpu: Option<&str>,
        scratch: &Path,
    ) -> anyhow::Result<Process> {
        let mut command = match cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpu]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let stdout = std::fs::File::create(scratch.join(format!("{name}.stdout")))?;
        let stderr = std::fs::File::create(scratch.join(format!("{name}.stderr")))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Process {
            name: name.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the process has exited (or cannot be waited for).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `addr` accepts connections; fails (with the process's stderr) if it exits
    /// or `timeout` passes.
    pub fn wait_for_port(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        scratch: &Path,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            let stderr = || {
                std::fs::read_to_string(scratch.join(format!("{}.stderr", self.name)))
                    .unwrap_or_default()
            };
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening:\n{}",
                    self.name,
                    stderr()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} in {timeout:?}:\n{}",
                    self.name,
                    stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CPU seconds (user + system) of the process and all its descendants.
    pub fn tree_cpu_seconds(&self) -> f64 {
        tree(self.pid())
            .iter()
            .filter_map(|pid| cpu_ticks(*pid))
            .sum::<u64>() as f64
            / TICKS_PER_SECOND
    }

    /// Peak resident set (`VmHWM`) summed over the tree, in bytes. A sum of per-process peaks:
    /// an upper bound of the tree's simultaneous peak.
    pub fn tree_peak_rss(&self) -> u64 {
        tree(self.pid())
            .iter()
            .filter_map(|pid| status_kib(*pid, "VmHWM:"))
            .sum::<u64>()
            * 1024
    }

    /// Context switches (voluntary + involuntary) of every thread of the tree so far: how
    /// often it slept and was woken, or was preempted.
    pub fn tree_context_switches(&self) -> u64 {
        tree(self.pid())
            .iter()
            .map(|pid| {
                let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                threads
                    .iter()
                    .map(|thread| {
                        let path = format!("{pid}/task/{thread}");
                        status_field(&path, "voluntary_ctxt_switches:").unwrap_or(0)
                            + status_field(&path, "nonvoluntary_ctxt_switches:").unwrap_or(0)
                    })
                    .sum::<u64>()
            })
            .sum()
    }

    /// Current resident set summed over the tree, in bytes.
    pub fn tree_rss(&self) -> u64 {
        tree(self.pid())
            .iter()
            .filter_map(|pid| status_kib(*pid, "VmRSS:"))
            .sum::<u64>()
            * 1024
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The process first, then its children (nginx's workers): a master that outlived a
        // killed worker would start a new one, which nobody would then stop.
        let pids = tree(self.pid());
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pid` and its descendants. With `taskset` in front, `pid` is taskset's pid, which `exec`s
/// the target, so it is the target itself.
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = stat_fields(child).and_then(|fields| fields.get(1)?.parse().ok())
            {
                parents.push((child, parent));
            }
        }
    }
    let mut found = vec![pid];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        for (child, child_parent) in &parents {
            if *child_parent == parent && !found.contains(child) {
                found.push(*child);
            }
        }
        index += 1;
    }
    found
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    // After the name: [0] state, [1] ppid, ... [11] utime, [12] stime (fields 14 and 15).
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    status_field(&pid.to_string(), key)
}

/// The first number after `key` in `/proc/<path>/status` (`path`: a pid, or `pid/task/tid`).
fn status_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{path}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// `VmRSS` of one process, in bytes (0 once it is gone).
pub fn rss_of(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:").unwrap_or(0) * 1024
}

/// `VmHWM` (peak resident set) of one process, in bytes (0 once it is gone).
pub fn hwm_of(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:").unwrap_or(0) * 1024
}

/// A free loopback port (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// True when `program` is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
