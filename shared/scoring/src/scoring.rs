//! Per-test scoring, a line-by-line port of upstream `fastpath/core.py`.
//!
//! Where upstream raises (and so silently loses the measurement) a scorer returns
//! [`Unscorable`]; the caller turns that into a failure score (`accuracy` 0.0 with a
//! `msg`), so every measurement still produces a row.

use crate::b64::{latin1, py_b64decode};
use crate::fingerprints::{Fingerprint, Fingerprints};
use crate::json::{self, Arr, Kind, Obj, Raw, RawMap};
use crate::model::{HttpResponse, Measurement, TestKeys, FACEBOOK_KEYS};
use crate::pep440::Version;
use crate::pyfmt;
use crate::scores::{init_scores, SVal, ScoreMap};
use std::borrow::Cow;

/// A measurement shape on which upstream raises an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unscorable(pub(crate) &'static str);

type R<T> = Result<T, Unscorable>;

/// `test_keys` as upstream's `g_or(msm, "test_keys", {})` sees it.
pub(crate) enum Tk<'m, 'a> {
    Dict(&'m TestKeys<'a>),
    /// Present but not an object (upstream's `tk.get` raises).
    NotDict,
}

pub(crate) fn test_keys<'m, 'a>(msm: &'m Measurement<'a>, empty: &'m TestKeys<'a>) -> Tk<'m, 'a> {
    match &msm.test_keys {
        None | Some(Obj::Null) => Tk::Dict(empty),
        Some(Obj::Val(tk)) => Tk::Dict(tk),
        Some(Obj::Other) => Tk::NotDict,
    }
}

fn dict<'m, 'a>(tk: &Tk<'m, 'a>) -> R<&'m TestKeys<'a>> {
    match tk {
        Tk::Dict(t) => Ok(t),
        Tk::NotDict => Err(Unscorable("test_keys is not an object")),
    }
}

fn set_f(s: &mut ScoreMap, k: &'static str, v: f64) {
    s.set(k, SVal::Float(v));
}

/// Dispatch on `test_name` like upstream `score_measurement`.
pub(crate) fn score(msm: &Measurement<'_>, fps: &Fingerprints) -> R<ScoreMap> {
    let empty = TestKeys::default();
    let tk = test_keys(msm, &empty);
    let tn = msm.test_name.and_then(json::as_str);
    let Some(tn) = tn else {
        return Err(Unscorable("missing or non-string test_name"));
    };
    match tn.as_ref() {
        "telegram" => telegram(dict(&tk)?),
        "facebook_messenger" => facebook_messenger(dict(&tk)?),
        "http_header_field_manipulation" => hhfm(&tk),
        "http_invalid_request_line" => http_invalid_request_line(dict(&tk)?),
        "whatsapp" => whatsapp(msm, dict(&tk)?),
        "vanilla_tor" => vanilla_tor(dict(&tk)?),
        "web_connectivity" => web_connectivity(msm, &tk, fps),
        "ndt" | "riseupvpn" => Ok(ScoreMap::new()),
        "tcp_connect" => tcp_connect(msm, &tk),
        "dash" => dash(dict(&tk)?),
        "meek_fronted_requests_test" => meek(dict(&tk)?),
        "psiphon" => psiphon(msm, dict(&tk)?),
        "tor" => tor(msm, dict(&tk)?),
        "http_requests" => http_requests(msm, &tk, fps),
        "dns_consistency" => Ok(init_scores()),
        "signal" => signal(msm, dict(&tk)?),
        "stunreachability" => stunreachability(dict(&tk)?),
        "torsf" => torsf(msm, dict(&tk)?),
        "openvpn" => openvpn(msm, &tk),
        "browser_web" => browser_web(dict(&tk)?),
        _ => {
            let mut s = init_scores();
            set_f(&mut s, "accuracy", 0.0);
            Ok(s)
        }
    }
}

/// `_detect_unknown_failure`: any `*_failure` value starting with "unknown_failure".
fn detect_unknown_failure(tk: &TestKeys<'_>) -> R<bool> {
    let mut found = false;
    for (_, v) in &tk.failure_fields {
        if !json::truthy(v) {
            continue;
        }
        match json::as_str(v) {
            Some(s) => found |= s.starts_with("unknown_failure"),
            None => return Err(Unscorable("non-string *_failure value")),
        }
    }
    Ok(found)
}

fn facebook_messenger(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let get = |k: &str| FACEBOOK_KEYS.iter().position(|f| *f == k).and_then(|i| tk.facebook[i]);
    const TRUES: [&str; 10] = [
        "facebook_b_api_dns_consistent",
        "facebook_b_api_reachable",
        "facebook_b_graph_dns_consistent",
        "facebook_b_graph_reachable",
        "facebook_dns_blocking",
        "facebook_edge_dns_consistent",
        "facebook_edge_reachable",
        "facebook_star_dns_consistent",
        "facebook_star_reachable",
        "facebook_stun_dns_consistent",
    ];
    let mut score = 0.0;
    let all_true = TRUES.iter().all(|k| json::is_true(get(k)));
    if !(all_true && json::is_false(get("facebook_tcp_blocking"))) {
        for key in &FACEBOOK_KEYS[..13] {
            if json::is_false(get(key)) {
                score += 0.5;
                scores.set(key, SVal::Bool(false));
            }
        }
        for key in &FACEBOOK_KEYS[13..] {
            if json::is_true(get(key)) {
                score += 0.5;
                scores.set(key, SVal::Bool(true));
            }
        }
    }
    set_f(&mut scores, "blocking_general", score);
    Ok(scores)
}

/// `_extract_tcp_connect`: (accessible, unreachable) endpoint counts.
fn extract_tcp_connect(tk: &TestKeys<'_>) -> R<(i64, i64)> {
    let (mut ok, mut ko) = (0, 0);
    match &tk.tcp_connect {
        None | Some(Arr::Null) => {}
        Some(Arr::Val(entries)) => {
            for e in entries {
                let success = match e {
                    Obj::Val(e) => match &e.status {
                        None | Some(Obj::Null) => None,
                        Some(Obj::Val(st)) => st.success,
                        Some(Obj::Other) => return Err(Unscorable("tcp_connect status is not an object")),
                    },
                    _ => return Err(Unscorable("tcp_connect entry is not an object")),
                };
                if json::is_true(success) {
                    ok += 1;
                } else if json::is_false(success) {
                    ko += 1;
                }
            }
        }
        Some(Arr::Other(truthy)) => {
            if *truthy {
                return Err(Unscorable("tcp_connect is not a list"));
            }
        }
    }
    Ok((ok, ko))
}

fn requests_list<'m, 'a>(tk: &'m TestKeys<'a>) -> R<&'m [Obj<crate::model::HttpTransaction<'a>>]> {
    match &tk.requests {
        None | Some(Arr::Null) => Ok(&[]),
        Some(Arr::Val(v)) => Ok(v),
        Some(Arr::Other(false)) => Ok(&[]),
        Some(Arr::Other(true)) => Err(Unscorable("requests is not a list")),
    }
}

fn telegram(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let web_blocking = json::str_eq(tk.telegram_web_status, "blocked");
    let (acc, unreach) = extract_tcp_connect(tk)?;
    let (mut ok_cnt, mut fail_cnt) = (0i64, 0i64);
    let mut web_failure: Option<Raw> = None;
    for req in requests_list(tk)? {
        let Obj::Val(req) = req else {
            return Err(Unscorable("request entry is not an object"));
        };
        let url = match &req.request {
            Some(Obj::Val(r)) => r.url,
            None => None,
            Some(_) => return Err(Unscorable("request.request is not an object")),
        };
        let Some(url) = url else {
            let mut s = init_scores();
            set_f(&mut s, "accuracy", 0.0);
            return Ok(s);
        };
        let Some(failure) = req.failure else {
            return Err(Unscorable("request without failure key"));
        };
        if json::str_eq(Some(url), "https://web.telegram.org/") || json::str_eq(Some(url), "http://web.telegram.org/") {
            if !json::is_null(failure) {
                web_failure = Some(failure);
            }
            continue;
        }
        if json::is_null(failure) {
            ok_cnt += 1;
        } else {
            fail_cnt += 1;
        }
    }
    let mut s = if acc + unreach > 0 {
        unreach as f64 / (acc + unreach) as f64
    } else {
        0.5
    };
    if ok_cnt + fail_cnt > 0 {
        s += fail_cnt as f64 / (ok_cnt + fail_cnt) as f64;
    } else {
        s += 0.5;
    }
    if web_blocking {
        s += 1.0;
    }
    let mut scores = init_scores();
    set_f(&mut scores, "blocking_general", s);
    scores.set("web_failure", SVal::echo(web_failure));
    scores.set("accessible_endpoints", SVal::Int(acc));
    scores.set("unreachable_endpoints", SVal::Int(unreach));
    scores.set("http_success_cnt", SVal::Int(ok_cnt));
    scores.set("http_failure_cnt", SVal::Int(fail_cnt));
    if let Some(wf) = web_failure {
        scores.set("msg", SVal::Str(format!("failure: {}", pyfmt::py_str(wf))));
    }
    Ok(scores)
}

/// Hashable form of a header value for Python set comparison.
#[derive(PartialEq, Debug)]
enum HVal {
    Str(String),
    Num(f64),
    Null,
}

fn hval(raw: Raw<'_>) -> R<HVal> {
    match json::kind(raw) {
        Kind::String => Ok(HVal::Str(json::as_str(raw).map(Cow::into_owned).unwrap_or_default())),
        Kind::Number | Kind::Bool => Ok(HVal::Num(json::as_py_number(raw).unwrap_or(f64::NAN))),
        Kind::Null => Ok(HVal::Null),
        _ => Err(Unscorable("unhashable header value")),
    }
}

fn hhfm(tk: &Tk<'_, '_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let failed = |mut s: ScoreMap| {
        set_f(&mut s, "accuracy", 0.0);
        Ok(s)
    };
    let Tk::Dict(tk) = tk else { return failed(scores) };
    let first = match &tk.requests {
        Some(Arr::Val(v)) => v.first(),
        _ => None,
    };
    let Some(first) = first else { return failed(scores) };
    let Obj::Val(first) = first else {
        return Err(Unscorable("requests[0] is not an object"));
    };
    let no_response = HttpResponse::default();
    let resp = match &first.response {
        None => &no_response,
        Some(Obj::Null) => return failed(scores),
        Some(Obj::Val(r)) => r,
        Some(Obj::Other) => return Err(Unscorable("response is not an object")),
    };
    let body = resp.body.filter(|b| !json::is_null(b));
    let Some(body) = body else {
        scores.set("total_tampering", SVal::Bool(true));
        set_f(&mut scores, "blocking_general", 1.0);
        scores.set("msg", SVal::Str("Empty body".into()));
        return Ok(scores);
    };
    let malformed = |mut s: ScoreMap| {
        set_f(&mut s, "blocking_general", 1.0);
        s.set("msg", SVal::Str("Malformed ctrl_headers".into()));
        Ok(s)
    };
    let Some(text) = json::as_str(body) else {
        return malformed(scores);
    };
    let parsed: Option<Obj<HeadersDict>> = serde_json::from_str(&text).ok();
    let ctrl_raw = match parsed {
        Some(Obj::Val(HeadersDict {
            headers_dict: Some(h), ..
        })) => h,
        _ => return malformed(scores),
    };
    // "unpack" value and turn into a set of tuples
    let Some(Obj::Val(RawMap(ctrl_entries))) = json::parse_obj::<RawMap>(ctrl_raw) else {
        return Err(Unscorable("headers_dict is not an object"));
    };
    let mut ctrl: Vec<(Cow<str>, HVal)> = Vec::new();
    for (k, v) in &ctrl_entries {
        let first = match json::kind(v) {
            Kind::Array => {
                let items: Vec<Raw> = serde_json::from_str(v.get()).map_err(|_| Unscorable("bad header list"))?;
                let Some(f) = items.first() else {
                    return Err(Unscorable("empty header value list"));
                };
                hval(f)?
            }
            Kind::String => {
                let s = json::as_str(v).unwrap_or_default();
                match s.chars().next() {
                    Some(c) => HVal::Str(c.to_string()),
                    None => return Err(Unscorable("empty header value string")),
                }
            }
            _ => return Err(Unscorable("header value is not indexable")),
        };
        let item = (k.clone(), first);
        if !ctrl.contains(&item) {
            ctrl.push(item);
        }
    }
    let mut expected: Vec<(Cow<str>, HVal)> = Vec::new();
    let req_headers = match &first.request {
        None => None,
        Some(Obj::Val(r)) => r.headers,
        Some(_) => return Err(Unscorable("request is not an object")),
    };
    if let Some(h) = req_headers {
        match json::parse_obj::<RawMap>(h) {
            Some(Obj::Val(RawMap(entries))) => {
                // dict semantics: last value per key
                for (k, v) in entries {
                    let v = hval(v)?;
                    match expected.iter_mut().find(|(ek, _)| *ek == k) {
                        Some(slot) => slot.1 = v,
                        None => expected.push((k, v)),
                    }
                }
            }
            _ => return Err(Unscorable("request headers is not an object")),
        }
    }
    let conn = (Cow::Borrowed("Connection"), HVal::Str("close".into()));
    ctrl.retain(|x| *x != conn);
    expected.retain(|x| *x != conn);
    let only_ctrl = ctrl.iter().filter(|x| !expected.contains(x)).count();
    let only_exp = expected.iter().filter(|x| !ctrl.contains(x)).count();
    if only_ctrl + only_exp == 0 {
        return Ok(scores);
    }
    set_f(&mut scores, "blocking_general", 1.1);
    scores.set(
        "msg",
        SVal::Str(format!("{} unexpected header change", only_ctrl + only_exp)),
    );
    Ok(scores)
}

crate::json::json_object!(
    /// The test helper's echo document in the HHFM response body.
    HeadersDict<'a> {
        "headers_dict" => headers_dict: Raw<'a>,
    }
);

/// `sent` / `received` as Python's `len()` and iteration see them.
enum PySeq<'a> {
    Missing,
    /// A string iterates over its characters.
    Text(Cow<'a, str>),
    List(Vec<Raw<'a>>),
    /// A dict iterates over its (distinct) keys.
    Keys(Vec<Cow<'a, str>>),
}

/// One item of a [`PySeq`].
enum PyItem<'s> {
    Str(&'s str),
    Raw(Raw<'s>),
}

impl<'a> PySeq<'a> {
    fn new(raw: Option<Raw<'a>>) -> R<Self> {
        let Some(raw) = raw else { return Ok(PySeq::Missing) };
        match json::kind(raw) {
            Kind::Array => Ok(PySeq::List(
                serde_json::from_str(raw.get()).map_err(|_| Unscorable("bad list"))?,
            )),
            Kind::String => Ok(PySeq::Text(json::as_str(raw).unwrap_or_default())),
            Kind::Object => match json::parse_obj::<RawMap>(raw) {
                Some(Obj::Val(RawMap(entries))) => {
                    let mut keys: Vec<Cow<str>> = Vec::new();
                    for (k, _) in entries {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                    Ok(PySeq::Keys(keys))
                }
                _ => Err(Unscorable("bad object")),
            },
            _ => Err(Unscorable("sent/received has no len()")),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            PySeq::Missing => true,
            PySeq::Text(t) => t.is_empty(),
            PySeq::List(v) => v.is_empty(),
            PySeq::Keys(v) => v.is_empty(),
        }
    }

    /// The items in iteration order, without allocating one per character.
    fn items(&self) -> Box<dyn Iterator<Item = PyItem<'_>> + '_> {
        match self {
            PySeq::Missing => Box::new(std::iter::empty()),
            PySeq::Text(t) => {
                let t = t.as_ref();
                Box::new(
                    t.char_indices()
                        .map(move |(i, c)| PyItem::Str(t.get(i..i + c.len_utf8()).unwrap_or_default())),
                )
            }
            PySeq::List(v) => Box::new(v.iter().map(|r| PyItem::Raw(r))),
            PySeq::Keys(v) => Box::new(v.iter().map(|k| PyItem::Str(k.as_ref()))),
        }
    }
}

/// Python `a == b` for two items of `sent` / `received`.
fn py_item_eq(a: &PyItem<'_>, b: &PyItem<'_>) -> bool {
    match (a, b) {
        (PyItem::Str(x), PyItem::Str(y)) => x == y,
        (PyItem::Raw(x), PyItem::Raw(y)) => json::py_eq(x, y),
        (PyItem::Str(s), PyItem::Raw(r)) | (PyItem::Raw(r), PyItem::Str(s)) => json::str_eq(Some(r), s),
    }
}

fn http_invalid_request_line(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    // `sent` and `received` are compared item by item (the comparison is symmetric). The
    // smaller one in bytes is read whole; a list on the other side only as far as the
    // comparison goes: a `received` list can hold several copies of a large response.
    let size = |raw: Option<Raw>| raw.map_or(0, |r| r.get().len());
    let (small, large) = if size(tk.sent) <= size(tk.received) {
        (tk.sent, tk.received)
    } else {
        (tk.received, tk.sent)
    };
    let small = PySeq::new(small)?;
    // zip stops at the shorter side; whether the larger one has items is needed too
    let (large_is_empty, anomaly) = match large.filter(|r| json::kind(r) == Kind::Array) {
        Some(list) => {
            // one walk of the list answers both
            let (mut empty, mut anomaly, mut items) = (true, false, small.items());
            json::array_items(list, |r| {
                empty = false;
                match items.next() {
                    Some(s) => {
                        anomaly = !py_item_eq(&s, &PyItem::Raw(r));
                        !anomaly
                    }
                    None => false,
                }
            });
            (empty, anomaly)
        }
        None => {
            let seq = PySeq::new(large)?;
            let anomaly = small.items().zip(seq.items()).any(|(s, r)| !py_item_eq(&s, &r));
            (seq.is_empty(), anomaly)
        }
    };
    if small.is_empty() && large_is_empty {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    }
    if anomaly {
        set_f(&mut scores, "blocking_general", 1.0);
    }
    Ok(scores)
}

fn whatsapp(msm: &Measurement<'_>, tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    if detect_unknown_failure(tk)? {
        set_f(&mut scores, "accuracy", 0.0);
    }
    if let Some(wf) = tk.failure_field("whatsapp_web_failure").filter(|v| json::truthy(v)) {
        let Some(wf) = json::as_str(wf) else {
            return Err(Unscorable("whatsapp_web_failure is not a string"));
        };
        if wf.contains("unknown_failure 'ascii' co") {
            if !json::truthy_opt(msm.report_id) {
                return Err(Unscorable("assertion on report_id"));
            }
            set_f(&mut scores, "accuracy", 0.0);
            return Ok(scores);
        }
    }
    let requests = match &tk.requests {
        None | Some(Arr::Null) => &[][..],
        Some(Arr::Val(v)) => v.as_slice(),
        Some(Arr::Other(false)) => &[][..],
        Some(Arr::Other(true)) => return Err(Unscorable("requests is not a list")),
    };
    if requests.is_empty() {
        if !json::truthy_opt(msm.report_id) {
            return Err(Unscorable("assertion on report_id"));
        }
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    }
    let mut webapp: Option<bool> = None;
    let mut registration: Option<bool> = None;
    for b in requests {
        let Obj::Val(b) = b else {
            return Err(Unscorable("request entry is not an object"));
        };
        let url = match &b.request {
            None => None,
            Some(Obj::Val(r)) => r.url,
            Some(_) => return Err(Unscorable("request.request is not an object")),
        };
        let url = match url {
            None => Cow::Borrowed(""),
            Some(u) => match json::as_str(u) {
                Some(s) => s,
                None => continue,
            },
        };
        if url == "https://web.whatsapp.com/" {
            webapp = Some(match b.failure {
                None => false, // default True is not in (None, "", False)
                Some(f) => json::is_null(f) || json::str_eq(Some(f), "") || json::as_py_number(f) == Some(0.0),
            });
        } else if url == "https://v.whatsapp.net/v2/register" {
            registration = Some(json::none_or_null(b.failure));
        }
    }
    let (Some(webapp), Some(registration)) = (webapp, registration) else {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    };
    if !webapp || !registration {
        set_f(&mut scores, "blocking_general", 1.0);
        return Ok(scores);
    }
    let (acc, unreach) = extract_tcp_connect(tk)?;
    if acc == 0 && unreach == 0 {
        set_f(&mut scores, "accuracy", 0.0);
    } else if acc == 0 {
        set_f(&mut scores, "blocking_general", 1.0);
    }
    let mut analysis = ScoreMap::new();
    analysis.set("registration_server_accessible", SVal::Bool(registration));
    analysis.set("whatsapp_web_accessible", SVal::Bool(webapp));
    analysis.set("whatsapp_endpoints_accessible", SVal::Bool(acc > 0));
    scores.set("analysis", SVal::Map(analysis));
    Ok(scores)
}

/// Python `needle in haystack` for tor logs (string, list or dict).
fn py_contains(haystack: Raw<'_>, needle: &str) -> R<bool> {
    match json::kind(haystack) {
        Kind::String => Ok(json::as_str(haystack).is_some_and(|s| s.contains(needle))),
        Kind::Array => {
            let items: Vec<Raw> = serde_json::from_str(haystack.get()).map_err(|_| Unscorable("bad list"))?;
            Ok(items.iter().any(|i| json::str_eq(Some(i), needle)))
        }
        Kind::Object => match json::parse_obj::<RawMap>(haystack) {
            Some(Obj::Val(RawMap(e))) => Ok(e.iter().any(|(k, _)| k == needle)),
            _ => Err(Unscorable("bad object")),
        },
        _ => Err(Unscorable("tor_logs is not iterable")),
    }
}

fn vanilla_tor(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let logs = match tk.tor_logs {
        Some(l) if json::truthy(l) => Some(l),
        _ => tk.tor_log,
    };
    let Some(logs) = logs.filter(|l| !json::is_null(l)) else {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    };
    if py_contains(logs, "Bootstrapped 100%: Done")? || py_contains(logs, "Bootstrapped 100% (done): Done")? {
        return Ok(scores);
    }
    let progress = match tk.tor_progress {
        None => 0.0,
        Some(p) => pyfmt::py_float(p).ok_or(Unscorable("tor_progress is not a number"))?,
    };
    // min(100, max(0, progress)) with Python's NaN behaviour
    let progress = if progress > 0.0 { progress } else { 0.0 };
    let progress = if progress > 100.0 { 100.0 } else { progress };
    if progress == 100.0 {
        return Ok(scores);
    }
    set_f(&mut scores, "blocking_general", 1.0 - progress * 0.004);
    Ok(scores)
}

// ---------------------------------------------------------------- web_connectivity

/// Why fingerprint matching stopped.
enum MatchFail {
    /// `binascii.Error` (caught by upstream: accuracy 0, no matches).
    Base64,
    Exception(Unscorable),
}

impl From<Unscorable> for MatchFail {
    fn from(u: Unscorable) -> Self {
        MatchFail::Exception(u)
    }
}

fn decode_b64(data: &str) -> Result<Vec<u8>, MatchFail> {
    py_b64decode(data).map_err(|e| match e {
        crate::b64::B64Error::NonAscii => MatchFail::Exception(Unscorable("non-ASCII base64 text")),
        _ => MatchFail::Base64,
    })
}

crate::json::json_object!(
    /// A `{format, data}` binary body or header value.
    B64Value<'a> {
        "format" => format: Raw<'a>,
        "data" => data: Raw<'a>,
    }
);

fn match_body<'f>(
    resp: &HttpResponse<'_>,
    fps: &'f Fingerprints,
    out: &mut Vec<&'f Fingerprint>,
) -> Result<(), MatchFail> {
    let Some(body) = resp.body else { return Ok(()) };
    let mut idx = Vec::new();
    match json::kind(body) {
        Kind::Null => return Ok(()),
        Kind::String => {
            let text = body.get();
            let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or_default();
            fps.body_matches_escaped(inner, &mut idx);
        }
        Kind::Object => {
            let Some(Obj::Val(v)) = json::parse_obj::<B64Value>(body) else {
                return Err(Unscorable("bad body object").into());
            };
            let is_b64 = match v.format {
                None => false,
                Some(f) => json::str_eq(Some(f), "base64"),
            };
            let Some(data) = v.data.filter(|_| is_b64) else {
                return Ok(()); // logbug: incorrect body of type dict
            };
            let Some(data) = json::as_str(data) else {
                return Err(Unscorable("base64 body data is not a string").into());
            };
            let bytes = decode_b64(&data)?;
            fps.body_matches(&bytes, &mut idx);
        }
        _ => return Err(Unscorable("body is not a string").into()),
    }
    out.extend(idx.into_iter().filter_map(|i| fps.http_fp(i)));
    Ok(())
}

fn match_headers<'f>(
    resp: &HttpResponse<'_>,
    fps: &'f Fingerprints,
    out: &mut Vec<&'f Fingerprint>,
) -> Result<(), MatchFail> {
    let Some(headers) = resp.headers else { return Ok(()) };
    if !json::truthy(headers) {
        return Ok(());
    }
    let Some(Obj::Val(RawMap(entries))) = json::parse_obj::<RawMap>(headers) else {
        return Err(Unscorable("headers is not an object").into());
    };
    // {h.lower(): v}[name]: the last header whose lower-cased name is `name` (compared without
    // allocating for ASCII names, which lower-case byte by byte)
    let lowers_to = |k: &str, name: &str| {
        if k.is_ascii() {
            k.len() == name.len() && k.bytes().zip(name.bytes()).all(|(a, b)| a.to_ascii_lowercase() == b)
        } else {
            k.to_lowercase() == name
        }
    };
    let mut idx: Vec<u32> = Vec::new();
    for (hname, hfps) in &fps.headers {
        let Some((_, v)) = entries.iter().rev().find(|(k, _)| lowers_to(k, hname)) else {
            continue;
        };
        let as_text = json::as_str(v);
        let mut prefix_value: Option<Option<Cow<str>>> = None;
        for hfp in hfps {
            let Some(fp) = fps.http_fp(hfp.fp) else { continue };
            if !hfp.prefix {
                if as_text.as_deref() == Some(fp.pattern.as_str()) {
                    idx.push(hfp.fp);
                }
                continue;
            }
            if prefix_value.is_none() {
                prefix_value = Some(match json::kind(v) {
                    Kind::String => as_text.clone(),
                    Kind::Object => match json::parse_obj::<B64Value>(v) {
                        Some(Obj::Val(b)) if json::str_eq(b.format, "base64") => {
                            let data = match b.data {
                                None => Cow::Borrowed(""),
                                Some(d) => json::as_str(d).ok_or(Unscorable("base64 header data is not a string"))?,
                            };
                            Some(Cow::Owned(latin1(&decode_b64(&data)?)))
                        }
                        _ => None,
                    },
                    _ => None,
                });
            }
            if let Some(Some(text)) = &prefix_value {
                if text.starts_with(fp.pattern.as_str()) {
                    idx.push(hfp.fp);
                }
            }
        }
    }
    idx.sort_unstable();
    out.extend(idx.into_iter().filter_map(|i| fps.http_fp(i)));
    Ok(())
}

fn match_fingerprints<'f>(msm: &Measurement<'_>, fps: &'f Fingerprints) -> Result<Vec<&'f Fingerprint>, MatchFail> {
    let tk = match &msm.test_keys {
        None | Some(Obj::Null) => return Ok(Vec::new()),
        Some(Obj::Val(tk)) => tk,
        Some(Obj::Other) => return Err(Unscorable("test_keys is not an object").into()),
    };
    let mut matches = Vec::new();
    match &tk.queries {
        None | Some(Arr::Null) | Some(Arr::Other(false)) => {}
        Some(Arr::Other(true)) => return Err(Unscorable("queries is not a list").into()),
        Some(Arr::Val(queries)) => {
            for q in queries {
                let q = match q {
                    Obj::Val(q) => q,
                    _ => return Err(Unscorable("query is not an object").into()),
                };
                let answers = match &q.answers {
                    None | Some(Arr::Null) | Some(Arr::Other(false)) => continue,
                    Some(Arr::Other(true)) => return Err(Unscorable("answers is not a list").into()),
                    Some(Arr::Val(a)) => a,
                };
                for a in answers {
                    let Obj::Val(a) = a else {
                        return Err(Unscorable("answer is not an object").into());
                    };
                    let addr = a.ipv4.or(a.hostname).or(a.ipv6);
                    if let Some(addr) = addr.and_then(json::as_str) {
                        matches.extend(fps.dns_matches(&addr));
                    }
                }
            }
        }
    }
    for req in requests_list(tk)? {
        let Obj::Val(req) = req else {
            return Err(Unscorable("request entry is not an object").into());
        };
        let resp = match &req.response {
            None | Some(Obj::Null) => continue,
            Some(Obj::Val(r)) => r,
            Some(Obj::Other) => return Err(Unscorable("response is not an object").into()),
        };
        match_body(resp, fps, &mut matches)?;
        match_headers(resp, fps, &mut matches)?;
    }
    Ok(matches)
}

fn probe_cc_upper(msm: &Measurement<'_>) -> R<String> {
    match msm.probe_cc {
        None => Ok("ZZ".into()),
        Some(r) if json::is_null(r) => Ok("ZZ".into()),
        Some(r) => json::as_str(r)
            .map(|s| s.to_uppercase())
            .ok_or(Unscorable("probe_cc is not a string")),
    }
}

fn record_matches(scores: &mut ScoreMap, matches: &[&Fingerprint], probe_cc: &str) {
    if !matches.is_empty() {
        let mut list = String::with_capacity(matches.len() * 128);
        list.push('[');
        for (i, fp) in matches.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&fp.minified);
        }
        list.push(']');
        scores.set("fingerprints", SVal::Json(list));
    }
    for fp in matches {
        if fp.is_confirmed(probe_cc) {
            set_f(scores, fp.scope.locality_key(), 1.0);
            scores.set("confirmed", SVal::Bool(true));
        }
    }
}

fn score_web_connectivity(msm: &Measurement<'_>, tk: &Tk<'_, '_>, matches: &[&Fingerprint]) -> R<ScoreMap> {
    let mut scores = init_scores();
    let tk = dict(tk)?;
    let probe_cc = probe_cc_upper(msm)?;
    record_matches(&mut scores, matches, &probe_cc);

    if let Some(tm) = tk.title_match {
        let ok = match json::kind(tm) {
            Kind::Null | Kind::Bool => true,
            Kind::Number => matches!(json::as_f64(tm), Some(v) if v == 0.0 || v == 1.0),
            _ => false,
        };
        if !ok {
            set_f(&mut scores, "accuracy", 0.0);
            return Ok(scores);
        }
    }

    let blocking = tk.blocking;
    let blocking_str = blocking.and_then(json::as_str);
    match blocking_str.as_deref() {
        Some(b @ ("tcp_ip" | "dns" | "http-diff" | "http-failure")) => {
            set_f(&mut scores, "blocking_general", 1.0);
            let mut analysis = ScoreMap::new();
            analysis.set("blocking_type", SVal::Str(b.to_owned()));
            scores.set("analysis", SVal::Map(analysis));
        }
        _ => {
            let is_false = blocking.is_some_and(|b| json::as_py_number(b) == Some(0.0));
            if is_false {
            } else if json::none_or_null(blocking) {
                if matches.is_empty() {
                    set_f(&mut scores, "accuracy", 0.0);
                }
            } else {
                let mut analysis = ScoreMap::new();
                analysis.set("msg", SVal::Str("Unsupported blocking type".into()));
                scores.set("analysis", SVal::Map(analysis));
                set_f(&mut scores, "accuracy", 0.0);
            }
        }
    }

    if detect_unknown_failure(tk)? {
        set_f(&mut scores, "accuracy", 0.0);
    }

    let extra: f64 = ["blocking_country", "blocking_global", "blocking_isp", "blocking_local"]
        .iter()
        .map(|k| scores.number(k).unwrap_or(0.0))
        .sum();
    let general = scores.number("blocking_general").unwrap_or(0.0) + extra;
    set_f(&mut scores, "blocking_general", general);

    if tk.accessible.is_some_and(json::is_null) && matches.is_empty() {
        set_f(&mut scores, "accuracy", 0.0);
    }
    Ok(scores)
}

fn web_connectivity(msm: &Measurement<'_>, tk: &Tk<'_, '_>, fps: &Fingerprints) -> R<ScoreMap> {
    match match_fingerprints(msm, fps) {
        Ok(matches) => score_web_connectivity(msm, tk, &matches),
        Err(MatchFail::Base64) => {
            let mut scores = score_web_connectivity(msm, tk, &[])?;
            set_f(&mut scores, "accuracy", 0.0);
            Ok(scores)
        }
        Err(MatchFail::Exception(e)) => Err(e),
    }
}

fn http_requests(msm: &Measurement<'_>, tk: &Tk<'_, '_>, fps: &Fingerprints) -> R<ScoreMap> {
    let mut scores = init_scores();
    let tk = dict(tk)?;
    let failed = json::truthy_opt(msm.control_failure) || json::truthy_opt(msm.experiment_failure);
    let (Some(blm), Some(hm)) = (
        tk.body_length_match.filter(|v| !json::is_null(v)),
        tk.headers_match.filter(|v| !json::is_null(v)),
    ) else {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    };
    if failed {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    }
    if !(json::truthy(blm) && json::truthy(hm)) {
        set_f(&mut scores, "blocking_general", 1.0);
    }
    let mut matches = Vec::new();
    for req in requests_list(tk)? {
        let Obj::Val(req) = req else {
            return Err(Unscorable("request entry is not an object"));
        };
        let is_tor = match &req.request {
            None | Some(Obj::Null) => None,
            Some(Obj::Val(r)) => match &r.tor {
                None | Some(Obj::Null) => None,
                Some(Obj::Val(t)) => t.is_tor,
                Some(Obj::Other) => return Err(Unscorable("request.tor is not an object")),
            },
            Some(Obj::Other) => return Err(Unscorable("request is not an object")),
        };
        if json::truthy_opt(is_tor) {
            continue;
        }
        let empty = HttpResponse::default();
        let resp = match &req.response {
            None | Some(Obj::Null) => &empty,
            Some(Obj::Val(r)) => r,
            Some(Obj::Other) => return Err(Unscorable("response is not an object")),
        };
        let r = match_body(resp, fps, &mut matches).and_then(|()| match_headers(resp, fps, &mut matches));
        match r {
            Ok(()) => {}
            Err(MatchFail::Base64) => return Err(Unscorable("invalid base64 in http_requests response")),
            Err(MatchFail::Exception(e)) => return Err(e),
        }
    }
    let probe_cc = probe_cc_upper(msm)?;
    record_matches(&mut scores, &matches, &probe_cc);
    Ok(scores)
}

// ---------------------------------------------------------------- other tests

fn tcp_connect(msm: &Measurement<'_>, tk: &Tk<'_, '_>) -> R<ScoreMap> {
    if !json::truthy_opt(msm.input) {
        return Err(Unscorable("tcp_connect without input"));
    }
    let tk = dict(tk)?;
    let mut scores = init_scores();
    let conn = tk.connection.and_then(json::as_str);
    let v = match conn.as_deref() {
        Some("success") => return Ok(scores),
        Some("generic_timeout_error" | "connection_refused_error" | "connect_error" | "tcp_timed_out_error") => 0.8,
        _ => 1.0,
    };
    set_f(&mut scores, "blocking_general", v);
    Ok(scores)
}

fn dash(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    if tk.key_count == 0 {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    }
    let Some(failure) = tk.failure.filter(|f| !json::is_null(f)) else {
        return Ok(scores);
    };
    const KNOWN: [&str; 9] = [
        "connection_aborted",
        "json_parse_error",
        "eof_error",
        "json_processing_error",
        "http_request_failed",
        "connect_error",
        "generic_timeout_error",
        "broken_pipe",
        "connection_refused",
    ];
    let known = match json::as_str(failure) {
        Some(f) => KNOWN.contains(&f.as_ref()) || f.contains("ssl_error"),
        None => py_contains(failure, "ssl_error")?,
    };
    if known {
        set_f(&mut scores, "blocking_general", 0.1);
    } else {
        scores.set("msg", SVal::Str("Probe error".into()));
    }
    set_f(&mut scores, "accuracy", 0.0);
    Ok(scores)
}

fn meek(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let requests = match &tk.requests {
        Some(Arr::Val(v)) => v.as_slice(),
        Some(Arr::Other(true)) => return Err(Unscorable("requests is not a list")),
        _ => &[][..],
    };
    if requests.is_empty() {
        set_f(&mut scores, "blocking_general", 1.0);
        scores.set("accuracy", SVal::Int(0));
        return Ok(scores);
    }
    for r in requests {
        let Obj::Val(r) = r else {
            return Err(Unscorable("request entry is not an object"));
        };
        let empty = HttpResponse::default();
        let resp = match &r.response {
            None => &empty,
            Some(Obj::Null) => {
                set_f(&mut scores, "blocking_general", 1.0);
                return Ok(scores);
            }
            Some(Obj::Val(v)) => v,
            Some(Obj::Other) => return Err(Unscorable("response is not an object")),
        };
        let code_ok = match resp.code {
            None => false,
            Some(c) => json::as_py_number(c) == Some(200.0),
        };
        if !code_ok {
            set_f(&mut scores, "blocking_general", 1.0);
            return Ok(scores);
        }
        let server: Option<Cow<str>> = match resp.headers {
            None => Some(Cow::Borrowed("")),
            Some(h) => meek_server_header(h)?,
        };
        let Some(server) = server else {
            return Err(Unscorable("Server header is not a string"));
        };
        if !server.starts_with("ECAcc ") {
            let v = scores.number("blocking_general").unwrap_or(0.0) + 0.5;
            set_f(&mut scores, "blocking_general", v);
        }
    }
    Ok(scores)
}

/// `headers.get("Server", "")` where headers is a dict or a `[[name, [value]], ...]` list.
fn meek_server_header(h: Raw<'_>) -> R<Option<Cow<'_, str>>> {
    let value: Option<Raw> = match json::kind(h) {
        Kind::Object => match json::parse_obj::<RawMap>(h) {
            Some(Obj::Val(RawMap(e))) => e.into_iter().rev().find(|(k, _)| k == "Server").map(|(_, v)| v),
            _ => return Err(Unscorable("bad headers object")),
        },
        Kind::Array => {
            let items: Vec<Raw> = serde_json::from_str(h.get()).map_err(|_| Unscorable("bad headers list"))?;
            let mut found = None;
            for item in items {
                if !json::truthy(item) {
                    continue;
                }
                let pair: Vec<Raw> = serde_json::from_str(item.get()).map_err(|_| Unscorable("bad header pair"))?;
                let (Some(name), Some(vals)) = (pair.first(), pair.get(1)) else {
                    return Err(Unscorable("bad header pair"));
                };
                let vals: Vec<Raw> = serde_json::from_str(vals.get()).map_err(|_| Unscorable("bad header values"))?;
                let first = vals.first().copied().ok_or(Unscorable("empty header values"))?;
                if json::str_eq(Some(name), "Server") {
                    found = Some(first);
                }
            }
            found
        }
        Kind::Null => return Err(Unscorable("headers is null")),
        _ => return Err(Unscorable("headers is not a dict")),
    };
    Ok(match value {
        None => Some(Cow::Borrowed("")),
        Some(v) => json::as_str(v),
    })
}

fn psiphon(msm: &Measurement<'_>, tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let bootstrap_zero = match tk.bootstrap_time {
        None => true,
        Some(b) => json::as_py_number(b) == Some(0.0),
    };
    if json::none_or_null(tk.failure) {
        set_f(&mut scores, "accuracy", if bootstrap_zero { 0.0 } else { 1.0 });
    } else {
        set_f(&mut scores, "accuracy", 1.0);
        set_f(&mut scores, "blocking_general", 1.0);
    }
    if msm.resolver_ip.is_none() {
        set_f(&mut scores, "accuracy", 0.0);
    }
    let mut extra = ScoreMap::new();
    extra.set("test_runtime", SVal::echo(msm.test_runtime));
    extra.set(
        "bootstrap_time",
        tk.bootstrap_time.map_or(SVal::Int(0), |b| SVal::echo(Some(b))),
    );
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

crate::json::json_object!(
    /// One Tor target.
    TorTarget<'a> {
        "failure" => failure: Raw<'a>,
        "network_events" => network_events: serde::de::IgnoredAny,
    }
);

fn tor(msm: &Measurement<'_>, tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let failed = |mut s: ScoreMap| {
        set_f(&mut s, "accuracy", 0.0);
        Ok(s)
    };
    let Some(targets) = tk.targets.filter(|t| json::truthy(t)) else {
        return failed(scores);
    };
    let entries = match json::kind(targets) {
        Kind::Array => return failed(scores),
        Kind::Object => match json::parse_obj::<TargetMap>(targets) {
            Some(Obj::Val(TargetMap(e, _))) => e,
            _ => return Err(Unscorable("bad targets object")),
        },
        _ => return Err(Unscorable("targets is not a dict")),
    };
    let (mut blocked, mut success) = (0u64, 0u64);
    for t in &entries {
        let Obj::Val(t) = t else {
            return Err(Unscorable("tor target is not an object"));
        };
        let (Some(f), Some(_)) = (t.failure, &t.network_events) else {
            return failed(scores);
        };
        match json::kind(f) {
            Kind::Null => success += 1,
            Kind::Bool if f.get() == "false" => {}
            Kind::String if f.get() == "\"\"" => return Err(Unscorable("empty tor target failure")),
            _ => blocked += 1,
        }
    }
    if blocked + success > 0 {
        set_f(
            &mut scores,
            "blocking_general",
            blocked as f64 / (blocked + success) as f64,
        );
    } else {
        set_f(&mut scores, "accuracy", 0.0);
    }
    let mut extra = ScoreMap::new();
    extra.set("test_runtime", SVal::echo(msm.test_runtime));
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

/// Tor targets, last value per key.
#[derive(Default)]
struct TargetMap<'a>(Vec<Obj<TorTarget<'a>>>, Vec<Cow<'a, str>>);

impl<'a> crate::json::FromMap<'a> for TargetMap<'a> {
    fn field<A: serde::de::MapAccess<'a>>(&mut self, key: Cow<'a, str>, map: &mut A) -> Result<(), A::Error> {
        let v: Obj<TorTarget<'a>> = map.next_value()?;
        match self.1.iter().position(|k| *k == key) {
            Some(i) => self.0[i] = v,
            None => {
                self.1.push(key);
                self.0.push(v);
            }
        }
        Ok(())
    }
}

fn signal(msm: &Measurement<'_>, tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let truthy_default_true = |v: Option<Raw>| v.is_none_or(json::truthy);
    if truthy_default_true(tk.failed_operation) || truthy_default_true(tk.failure) {
        set_f(&mut scores, "accuracy", 0.0);
    }
    if signal_version_rules(msm).is_none() {
        set_f(&mut scores, "accuracy", 0.0);
        return Ok(scores);
    }
    let st = tk.signal_backend_status.and_then(json::as_str);
    match st.as_deref() {
        Some("ok") => {}
        Some("blocked") => {
            set_f(&mut scores, "blocking_general", 1.0);
            let mut analysis = ScoreMap::new();
            analysis.set("signal_backend_failure", SVal::echo(tk.signal_backend_failure));
            scores.set("analysis", SVal::Map(analysis));
        }
        _ => set_f(&mut scores, "accuracy", 0.0),
    }
    Ok(scores)
}

/// The version/date checks inside upstream's `try:`; None means "accuracy 0 and return".
fn signal_version_rules(msm: &Measurement<'_>) -> Option<()> {
    let tv = match msm.test_version {
        None => Cow::Borrowed("0.0.0"),
        Some(v) if json::is_null(v) => Cow::Borrowed("0.0.0"),
        Some(v) => json::as_str(v)?,
    };
    let start = msm.measurement_start_time.filter(|v| !json::is_null(v))?;
    let start = pyfmt::py_strptime(&json::as_str(start)?)?;
    if tv == "0.2.4" {
        return None;
    }
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(0, 0, 0));
    let tv = Version::parse(&tv)?;
    if tv <= Version::parse("0.2.3")? && start >= day(2023, 11, 7)? {
        return None;
    }
    if tv < Version::parse("0.2.2")? && start >= day(2022, 10, 19)? {
        return None;
    }
    let ev = match &msm.annotations {
        None | Some(Obj::Null) => Cow::Borrowed("0.0.0"),
        Some(Obj::Val(a)) => match a.engine_version {
            None => Cow::Borrowed("0.0.0"),
            Some(v) if json::is_null(v) => Cow::Borrowed("0.0.0"),
            Some(v) => json::as_str(v)?,
        },
        Some(Obj::Other) => return None,
    };
    if Version::parse(&ev)? < Version::parse("3.17.2")? && start >= day(2023, 5, 2)? {
        return None;
    }
    Some(())
}

fn stunreachability(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let mut extra = ScoreMap::new();
    extra.set("endpoint", SVal::echo(tk.endpoint));
    if json::truthy_opt(tk.failure) {
        set_f(&mut scores, "blocking_general", 1.0);
        extra.set("failure", SVal::echo(tk.failure));
    }
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

fn torsf(msm: &Measurement<'_>, tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    if json::str_eq(msm.software_version, "3.8.3") {
        let name = match msm.software_name {
            None => Cow::Borrowed("unknown"),
            Some(n) => json::as_str(n).ok_or(Unscorable("software_name is not a string"))?,
        };
        if name.starts_with("ooniprobe-android") {
            set_f(&mut scores, "accuracy", 0.0);
            return Ok(scores);
        }
    }
    if json::truthy_opt(tk.failure) {
        set_f(&mut scores, "blocking_general", 1.0);
        return Ok(scores);
    }
    let mut extra = ScoreMap::new();
    extra.set("bootstrap_time", SVal::echo(tk.bootstrap_time));
    extra.set("test_runtime", SVal::echo(msm.test_runtime));
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

fn openvpn(msm: &Measurement<'_>, tk: &Tk<'_, '_>) -> R<ScoreMap> {
    let tk = dict(tk)?;
    let mut scores = init_scores();
    if json::is_false(tk.success) {
        set_f(&mut scores, "blocking_general", 1.0);
    } else if json::none_or_null(tk.success) {
        set_f(&mut scores, "accuracy", 0.0);
    }
    let mut extra = ScoreMap::new();
    extra.set("test_runtime", SVal::echo(msm.test_runtime));
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

fn browser_web(tk: &TestKeys<'_>) -> R<ScoreMap> {
    let mut scores = init_scores();
    let res = tk.result.and_then(json::as_str);
    match res.as_deref() {
        Some("ok") => {}
        Some("error") => set_f(&mut scores, "blocking_general", 1.0),
        _ => set_f(&mut scores, "accuracy", 0.0),
    }
    let mut extra = ScoreMap::new();
    let or = |v: Option<Raw>, default: SVal| match v {
        Some(r) if !json::is_null(r) => SVal::echo(Some(r)),
        _ => default,
    };
    extra.set("browser_name", or(tk.browser_name, SVal::Str(String::new())));
    extra.set("load_time_ms", or(tk.load_time_ms, SVal::Int(0)));
    scores.set("extra", SVal::Map(extra));
    Ok(scores)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn hirl_anomaly(sent: &str, received: &str) -> Option<bool> {
        let text = format!(r#"{{"sent":{sent},"received":{received}}}"#);
        let Obj::Val(tk) = serde_json::from_str::<Obj<TestKeys>>(&text).unwrap() else {
            panic!("test_keys")
        };
        let s = http_invalid_request_line(&tk).ok()?;
        Some(s.number("blocking_general") == Some(1.0))
    }

    #[test]
    fn header_names_are_lower_cased_like_python_and_the_last_duplicate_wins() {
        let row = |name: &str, loc: &str, pattern: &str| crate::FingerprintRow {
            name: name.into(),
            scope: "isp".into(),
            location_found: loc.into(),
            pattern_type: "full".into(),
            pattern: pattern.into(),
            ..Default::default()
        };
        let fps = Fingerprints::from_rows(
            vec![],
            vec![row("k", "header.key", "v"), row("upper", "header.Server", "nginx")],
        )
        .unwrap();
        let names = |headers: &str| {
            let text = format!(r#"{{"headers": {headers}}}"#);
            let Obj::Val(resp) = serde_json::from_str::<Obj<HttpResponse>>(&text).unwrap() else {
                panic!("response")
            };
            let mut out = Vec::new();
            assert!(match_headers(&resp, &fps, &mut out).is_ok());
            out.iter().map(|fp| fp.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(r#"{"KEY": "v"}"#), ["k"]);
        assert_eq!(names(r#"{"Key": "v", "kEY": "w"}"#), Vec::<String>::new());
        assert_eq!(names(r#"{"Key": "w", "kEY": "v"}"#), ["k"]);
        // KELVIN SIGN lower-cases to an ASCII k
        assert_eq!(names(r#"{"key": "w", "\u212aey": "v"}"#), ["k"]);
        assert_eq!(names(r#"{"key": "v", "\u212aey": "w"}"#), Vec::<String>::new());
        // a name with capitals in the table never equals a lower-cased one
        assert_eq!(names(r#"{"Server": "nginx", "server": "nginx"}"#), Vec::<String>::new());
    }

    #[test]
    fn invalid_request_line_compares_items_like_python() {
        // a string iterates over characters, a dict over its keys
        assert_eq!(hirl_anomaly(r#""ab\u00e9""#, r#"["a","\u0062","é"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#""ab""#, r#""ax""#), Some(true));
        assert_eq!(hirl_anomaly(r#"{"a":1,"b":2,"a":3}"#, r#"["a","b"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"[1, true, [2.0]]"#, r#"[1.0, 1, [2]]"#), Some(false));
        assert_eq!(hirl_anomaly(r#""1""#, r#"[1]"#), Some(true));
        // zip stops at the shorter one
        assert_eq!(hirl_anomaly(r#""abc""#, r#""ab""#), Some(false));
        // only as many items as the shorter side has are read from the longer one
        assert_eq!(hirl_anomaly(r#"["a"]"#, r#"["a", "b", "c", "d"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"["a", "b", "c", "d"]"#, r#"["a"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"["a", "b"]"#, r#"["a", "x", "c", "d"]"#), Some(true));
        assert_eq!(hirl_anomaly(r#"["a", "x", "c", "d"]"#, r#"["a", "b"]"#), Some(true));
        assert_eq!(hirl_anomaly(r#"[]"#, r#"["a", "b"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"["a", "b"]"#, r#"[]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"[]"#, r#"[]"#), Some(false));
        assert_eq!(hirl_anomaly(r#""""#, r#"["a", "b"]"#), Some(false));
        assert_eq!(hirl_anomaly(r#"["a", "b", "c"]"#, r#"{"a": 1}"#), Some(false));
        assert_eq!(hirl_anomaly(r#"["a", "b", "c"]"#, r#"7"#), None);
        assert_eq!(hirl_anomaly(r#"7"#, r#"["a", "b", "c"]"#), None);
        assert_eq!(hirl_anomaly(r#"5"#, r#""ab""#), None);
    }
}
