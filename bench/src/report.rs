//! The table: one row per figure, each side's samples (one per run, runs alternating A/B),
//! shown as median (min–max) with the ratio ours ÷ peer and the target it is held to. The peer
//! is Caddy, or the floor (a minimal static rustls server, workload 7).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// What a row must show to meet its target.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Nothing asked; shown for context.
    None,
    /// Median ours ÷ median peer at most this.
    RatioAtMost(f64),
    /// Our median at most the peer's plus this (in the row's unit).
    OursAtMostPeerPlus(f64),
    /// Our median at most this (in the row's unit).
    OursAtMost(f64),
    /// Both: ratio at most `.0`, our median at most `.1`.
    RatioAndOursAtMost(f64, f64),
}

/// One figure of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    /// One sample per run of ours.
    pub ours: Vec<f64>,
    /// Who the other column is: `Caddy` or `the floor`.
    pub peer_name: String,
    /// One sample per run of the peer; empty where it does not run this size.
    pub peer: Vec<f64>,
    pub target: Target,
}

impl Row {
    pub fn new(workload: &str, metric: &str, unit: &str, target: Target) -> Row {
        Row {
            workload: workload.into(),
            metric: metric.into(),
            unit: unit.into(),
            ours: Vec::new(),
            peer_name: "Caddy".into(),
            peer: Vec::new(),
            target,
        }
    }

    /// The same row with the floor as its peer.
    pub fn against_floor(mut self) -> Row {
        self.peer_name = "the floor".into();
        self
    }

    pub fn ratio(&self) -> Option<f64> {
        let (o, c) = (median(&self.ours)?, median(&self.peer)?);
        (c > 0.0).then(|| o / c)
    }

    /// `Some(true)` met, `Some(false)` missed, `None` no target or no figures.
    pub fn met(&self) -> Option<bool> {
        let ours = median(&self.ours)?;
        match self.target {
            Target::None => None,
            Target::RatioAtMost(r) => Some(self.ratio()? <= r),
            Target::OursAtMost(v) => Some(ours <= v),
            Target::OursAtMostPeerPlus(v) => Some(ours <= median(&self.peer)? + v),
            Target::RatioAndOursAtMost(r, v) => Some(self.ratio()? <= r && ours <= v),
        }
    }
}

/// The median (mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `p`-th percentile (0–100) by nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn figure(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(samples: &[f64]) -> String {
    let Some(m) = median(samples) else {
        return "–".into();
    };
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if samples.len() == 1 || lo == hi {
        figure(m)
    } else {
        format!("{} ({}–{})", figure(m), figure(lo), figure(hi))
    }
}

fn target_text(t: Target, unit: &str) -> String {
    match t {
        Target::None => String::new(),
        Target::RatioAtMost(r) => format!("ratio ≤ {r}"),
        Target::OursAtMost(v) => format!("ours ≤ {} {unit}", figure(v)),
        Target::OursAtMostPeerPlus(v) => format!("ours ≤ peer + {} {unit}", figure(v)),
        Target::RatioAndOursAtMost(r, v) => format!("ratio ≤ {r}, ours ≤ {} {unit}", figure(v)),
    }
}

/// The Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | figure | ours: median (min–max) | peer | peer: median (min–max) | ours/peer | target | met |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let ratio = r.ratio().map(|x| format!("{x:.2}")).unwrap_or("–".into());
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**MISSED**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
            r.workload,
            r.metric,
            r.unit,
            cell(&r.ours),
            if r.peer.is_empty() { "" } else { &r.peer_name },
            cell(&r.peer),
            ratio,
            target_text(r.target, &r.unit),
            met
        );
    }
    out
}

/// Writes `<stem>.json` and `<stem>.md` into `dir`.
pub fn write(dir: &Path, stem: &str, header: &serde_json::Value, preamble: &str, rows: &[Row]) {
    std::fs::create_dir_all(dir).expect("results folder");
    let mut json = header.clone();
    json["rows"] = serde_json::to_value(rows).expect("rows");
    for (row, out) in rows.iter().zip(json["rows"].as_array_mut().expect("rows")) {
        out["ours_median"] = median(&row.ours).into();
        out["peer_median"] = median(&row.peer).into();
        out["ratio"] = row.ratio().into();
        out["met"] = row.met().into();
    }
    std::fs::write(
        dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write json");
    std::fs::write(
        dir.join(format!("{stem}.md")),
        format!("{preamble}\n{}", markdown(rows)),
    )
    .expect("write md");
}
