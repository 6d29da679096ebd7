//! CPU time of processes from `/proc/<pid>/stat` (Linux), so the end-to-end bench can say how
//! much CPU each part used (the project's processes, ClickHouse, the AWS emulator): take a
//! [`CpuMeter`] before the load, read it after.

use serde::Serialize;
use std::path::Path;
use std::sync::OnceLock;

/// Why a process's CPU time could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("malformed stat line: {0}")]
    Malformed(&'static str),
}

/// CPU time of one process, in clock ticks (`utime`, `stime`: fields 14 and 15 of `stat`;
/// `cutime`, `cstime`: 16 and 17, the waited-for children).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
}

impl CpuTicks {
    /// User + system time of the process itself.
    pub fn own(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<CpuTicks, ProcError> {
    let close = text
        .rfind(')')
        .ok_or(ProcError::Malformed("no ')' after the command name"))?;
    // After ')': field 3 (state) is index 0, so field n is index n - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize, name: &'static str| -> Result<u64, ProcError> {
        fields
            .get(n - 3)
            .ok_or(ProcError::Malformed(name))?
            .parse::<u64>()
            .map_err(|_| ProcError::Malformed(name))
    };
    Ok(CpuTicks {
        utime: field(14, "utime")?,
        stime: field(15, "stime")?,
        // cutime/cstime are signed in the kernel's format (long); treat a negative as 0.
        cutime: field(16, "cutime").unwrap_or(0),
        cstime: field(17, "cstime").unwrap_or(0),
    })
}

/// Clock ticks per second (`getconf CLK_TCK`, read once; 100, the Linux value, if that fails).
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// The ticks of process `pid`.
pub fn read_ticks(pid: u32) -> Result<CpuTicks, ProcError> {
    read_ticks_at(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

fn read_ticks_at(path: &Path) -> Result<CpuTicks, ProcError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_stat(&text)
}

/// User + system CPU seconds used so far by process `pid` (not its children).
pub fn cpu_seconds(pid: u32) -> Result<f64, ProcError> {
    Ok(read_ticks(pid)?.own() as f64 / clk_tck() as f64)
}

/// User + system CPU seconds used so far by this process.
pub fn self_cpu_seconds() -> Result<f64, ProcError> {
    Ok(read_ticks_at(Path::new("/proc/self/stat"))?.own() as f64 / clk_tck() as f64)
}

/// Processes (other than this one) whose command line contains `needle`, e.g. `clickhouse`,
/// `aws_server.py`, `ooni dev`. The command line's NUL separators count as spaces.
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| cmdline_text(&raw).contains(needle))
                .unwrap_or(false)
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn cmdline_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .replace('\0', " ")
        .trim_end()
        .to_owned()
}

/// CPU used by named groups of processes between [`CpuMeter::start`] and [`CpuMeter::read`].
#[derive(Debug, Clone)]
pub struct CpuMeter {
    groups: Vec<(String, Vec<(u32, u64)>)>,
}

/// One group's CPU over the measured interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCpu {
    pub name: String,
    pub pids: Vec<u32>,
    /// User + system seconds of the group's processes over the interval.
    pub cpu_seconds: f64,
    /// Processes that could not be read at the end (they exited; their time is not counted).
    pub vanished: Vec<u32>,
}

impl CpuMeter {
    /// Snapshots each group's processes now. Unreadable processes are left out.
    pub fn start(groups: Vec<(String, Vec<u32>)>) -> CpuMeter {
        let groups = groups
            .into_iter()
            .map(|(name, pids)| {
                let snap = pids
                    .into_iter()
                    .filter_map(|p| read_ticks(p).ok().map(|t| (p, t.own())))
                    .collect();
                (name, snap)
            })
            .collect();
        CpuMeter { groups }
    }

    /// CPU seconds each group used since [`CpuMeter::start`].
    pub fn read(&self) -> Vec<GroupCpu> {
        let tck = clk_tck() as f64;
        self.groups
            .iter()
            .map(|(name, snap)| {
                let mut ticks = 0u64;
                let mut vanished = Vec::new();
                for &(pid, before) in snap {
                    match read_ticks(pid) {
                        Ok(t) => ticks += t.own().saturating_sub(before),
                        Err(_) => vanished.push(pid),
                    }
                }
                GroupCpu {
                    name: name.clone(),
                    pids: snap.iter().map(|&(p, _)| p).collect(),
                    cpu_seconds: ticks as f64 / tck,
                    vanished,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "13576 (clickhouse-serv) S 1 13570 13570 0 -1 4194560 1403287 0 4 0 \
        52213 9876 7 3 20 0 571 0 8735462 7096504320 297451 18446744073709551615 1 1 0 0 0 0 0 \
        4096 1260 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn utime_and_stime_are_fields_fourteen_and_fifteen() {
        let t = parse_stat(STAT).unwrap();
        assert_eq!(
            t,
            CpuTicks {
                utime: 52213,
                stime: 9876,
                cutime: 7,
                cstime: 3
            }
        );
        assert_eq!(t.own(), 62089);
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let text = STAT.replace("(clickhouse-serv)", "(a) b (c ) d)");
        assert_eq!(parse_stat(&text).unwrap().utime, 52213);
    }

    #[test]
    fn a_truncated_or_garbled_stat_line_is_malformed() {
        assert!(matches!(
            parse_stat("123 no parens"),
            Err(ProcError::Malformed(_))
        ));
        assert!(matches!(
            parse_stat("1 (x) S 1 2 3"),
            Err(ProcError::Malformed("utime"))
        ));
        let garbled = STAT.replace(" 52213 ", " x ");
        assert!(matches!(
            parse_stat(&garbled),
            Err(ProcError::Malformed("utime"))
        ));
        // negative children times (a kernel `long`) do not fail the read
        assert_eq!(
            parse_stat(&STAT.replace(" 7 3 20 ", " -1 3 20 "))
                .unwrap()
                .cutime,
            0
        );
    }

    #[test]
    fn the_clock_tick_rate_is_positive_and_our_own_cpu_time_grows_with_work() {
        assert!(clk_tck() > 0);
        let before = self_cpu_seconds().unwrap();
        // Spin until the meter shows 0.1 s more CPU; on a busy machine that can take much
        // longer than 0.1 s of wall time, so only a generous wall bound fails the test.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut x = 0u64;
        let mut after = before;
        while after - before < 0.1 && std::time::Instant::now() < until {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            after = self_cpu_seconds().unwrap();
        }
        assert!(after - before >= 0.1, "{before} -> {after}");
        assert!(cpu_seconds(std::process::id()).unwrap() >= after);
    }

    #[test]
    fn a_missing_process_is_a_read_error() {
        assert!(matches!(read_ticks(u32::MAX), Err(ProcError::Read { .. })));
    }

    #[test]
    fn processes_are_found_by_their_command_line_and_metered() {
        let mut child = std::process::Command::new("sleep")
            .arg("7.654321")
            .spawn()
            .unwrap();
        // Right after spawn the child may not have exec'd yet: look until it shows.
        let mut found = Vec::new();
        for _ in 0..200 {
            found = pids_matching("sleep 7.654321");
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let meter = CpuMeter::start(vec![
            ("sleepers".into(), found.clone()),
            ("none".into(), vec![u32::MAX]),
        ]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, vec![child.id()]);
        let read = meter.read();
        assert_eq!(read[0].name, "sleepers");
        assert_eq!(read[0].pids, vec![child.id()]);
        assert!(read[0].cpu_seconds < 0.5);
        assert_eq!(read[0].vanished, vec![child.id()]);
        assert!(
            read[1].pids.is_empty(),
            "an unreadable pid is left out at the start"
        );
        assert_eq!(
            cmdline_text(b"ooni\0dev\0--no-poller\0"),
            "ooni dev --no-poller"
        );
    }
}
