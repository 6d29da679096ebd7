//! Borrowed views of a measurement: only what scoring and the fastpath row read.
//!
//! Everything else is skipped with `IgnoredAny`; bulky leaves (bodies, headers,
//! Tor targets, network events) are kept as undecoded `&RawValue`s.

use crate::json::{json_object, Arr, FromMap, Key, Obj, Raw};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

json_object!(
    /// The top-level measurement fields the fastpath reads.
    Measurement<'a> {
        "report_id" => report_id: Raw<'a>,
        "input" => input: Raw<'a>,
        "probe_cc" => probe_cc: Raw<'a>,
        "probe_asn" => probe_asn: Raw<'a>,
        "test_name" => test_name: Raw<'a>,
        "test_start_time" => test_start_time: Raw<'a>,
        "measurement_start_time" => measurement_start_time: Raw<'a>,
        "software_name" => software_name: Raw<'a>,
        "software_version" => software_version: Raw<'a>,
        "test_version" => test_version: Raw<'a>,
        "test_runtime" => test_runtime: Raw<'a>,
        "annotations" => annotations: Obj<Annotations<'a>>,
        "test_helpers" => test_helpers: Obj<TestHelpers<'a>>,
        "resolver_ip" => resolver_ip: Raw<'a>,
        "resolver_asn" => resolver_asn: Raw<'a>,
        "resolver_network_name" => resolver_network_name: Raw<'a>,
        "probe_network_name" => probe_network_name: Raw<'a>,
        "platform" => platform: Raw<'a>,
        "success" => success: Raw<'a>,
        "control_failure" => control_failure: Raw<'a>,
        "experiment_failure" => experiment_failure: Raw<'a>,
        "test_keys" => test_keys: Obj<TestKeys<'a>>,
    }
);

json_object!(
    /// `annotations`
    Annotations<'a> {
        "platform" => platform: Raw<'a>,
        "architecture" => architecture: Raw<'a>,
        "engine_name" => engine_name: Raw<'a>,
        "engine_version" => engine_version: Raw<'a>,
        "ooni_run_link_id" => ooni_run_link_id: Raw<'a>,
    }
);

json_object!(
    /// `test_helpers`
    TestHelpers<'a> {
        "backend" => backend: Obj<Backend<'a>>,
    }
);

json_object!(
    /// `test_helpers.backend`
    Backend<'a> {
        "address" => address: Raw<'a>,
        "type" => kind: Raw<'a>,
    }
);

json_object!(
    /// One `test_keys.queries[]` entry.
    Query<'a> {
        "answers" => answers: Arr<Obj<Answer<'a>>>,
    }
);

json_object!(
    /// One DNS answer.
    Answer<'a> {
        "ipv4" => ipv4: Raw<'a>,
        "hostname" => hostname: Raw<'a>,
        "ipv6" => ipv6: Raw<'a>,
    }
);

json_object!(
    /// One `test_keys.requests[]` entry.
    HttpTransaction<'a> {
        "request" => request: Obj<HttpRequest<'a>>,
        "response" => response: Obj<HttpResponse<'a>>,
        "failure" => failure: Raw<'a>,
    }
);

json_object!(
    /// `requests[].request`
    HttpRequest<'a> {
        "url" => url: Raw<'a>,
        "headers" => headers: Raw<'a>,
        "tor" => tor: Obj<TorFlag<'a>>,
    }
);

json_object!(
    /// `requests[].request.tor`
    TorFlag<'a> {
        "is_tor" => is_tor: Raw<'a>,
    }
);

json_object!(
    /// `requests[].response`
    HttpResponse<'a> {
        "body" => body: Raw<'a>,
        "headers" => headers: Raw<'a>,
        "code" => code: Raw<'a>,
    }
);

json_object!(
    /// One `test_keys.tcp_connect[]` entry.
    TcpConnect<'a> {
        "status" => status: Obj<TcpStatus<'a>>,
    }
);

json_object!(
    /// `tcp_connect[].status`
    TcpStatus<'a> {
        "success" => success: Raw<'a>,
    }
);

/// Facebook Messenger keys read by the scorer, in upstream's order.
pub(crate) const FACEBOOK_KEYS: [&str; 15] = [
    "facebook_b_api_dns_consistent",
    "facebook_b_api_reachable",
    "facebook_b_graph_dns_consistent",
    "facebook_b_graph_reachable",
    "facebook_edge_dns_consistent",
    "facebook_edge_reachable",
    "facebook_external_cdn_dns_consistent",
    "facebook_external_cdn_reachable",
    "facebook_scontent_cdn_dns_consistent",
    "facebook_scontent_cdn_reachable",
    "facebook_star_dns_consistent",
    "facebook_star_reachable",
    "facebook_stun_dns_consistent",
    "facebook_tcp_blocking",
    "facebook_dns_blocking",
];

/// The union of every `test_keys` field any scorer reads.
#[derive(Default)]
pub(crate) struct TestKeys<'a> {
    pub(crate) key_count: usize,
    // web_connectivity
    pub(crate) blocking: Option<Raw<'a>>,
    pub(crate) title_match: Option<Raw<'a>>,
    pub(crate) accessible: Option<Raw<'a>>,
    pub(crate) queries: Option<Arr<Obj<Query<'a>>>>,
    pub(crate) requests: Option<Arr<Obj<HttpTransaction<'a>>>>,
    /// Every `*_failure` key, last value per key.
    pub(crate) failure_fields: Vec<(Cow<'a, str>, Raw<'a>)>,
    // telegram, whatsapp
    pub(crate) tcp_connect: Option<Arr<Obj<TcpConnect<'a>>>>,
    pub(crate) telegram_web_status: Option<Raw<'a>>,
    // facebook_messenger
    pub(crate) facebook: [Option<Raw<'a>>; 15],
    // http_invalid_request_line
    pub(crate) sent: Option<Raw<'a>>,
    pub(crate) received: Option<Raw<'a>>,
    // vanilla_tor, tor
    pub(crate) tor_logs: Option<Raw<'a>>,
    pub(crate) tor_log: Option<Raw<'a>>,
    pub(crate) tor_progress: Option<Raw<'a>>,
    pub(crate) targets: Option<Raw<'a>>,
    // shared by several experiments
    pub(crate) failure: Option<Raw<'a>>,
    pub(crate) bootstrap_time: Option<Raw<'a>>,
    pub(crate) success: Option<Raw<'a>>,
    pub(crate) endpoint: Option<Raw<'a>>,
    pub(crate) result: Option<Raw<'a>>,
    pub(crate) browser_name: Option<Raw<'a>>,
    pub(crate) load_time_ms: Option<Raw<'a>>,
    pub(crate) connection: Option<Raw<'a>>,
    pub(crate) body_length_match: Option<Raw<'a>>,
    pub(crate) headers_match: Option<Raw<'a>>,
    pub(crate) signal_backend_status: Option<Raw<'a>>,
    pub(crate) signal_backend_failure: Option<Raw<'a>>,
    pub(crate) failed_operation: Option<Raw<'a>>,
    // openvpn observation row
    pub(crate) network_events: Option<Raw<'a>>,
    pub(crate) minivpn_version: Option<Raw<'a>>,
    pub(crate) obfs4_version: Option<Raw<'a>>,
    pub(crate) obfuscation: Option<Raw<'a>>,
    pub(crate) provider: Option<Raw<'a>>,
    pub(crate) remote: Option<Raw<'a>>,
    pub(crate) transport: Option<Raw<'a>>,
    pub(crate) success_handshake: Option<Raw<'a>>,
    pub(crate) success_icmp: Option<Raw<'a>>,
    pub(crate) success_urlgrab: Option<Raw<'a>>,
}

impl<'a> TestKeys<'a> {
    /// Value of a `*_failure` key (Python `tk.get(key)`).
    pub(crate) fn failure_field(&self, key: &str) -> Option<Raw<'a>> {
        self.failure_fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'a> FromMap<'a> for TestKeys<'a> {
    fn field<A: MapAccess<'a>>(&mut self, key: Cow<'a, str>, map: &mut A) -> Result<(), A::Error> {
        self.key_count += 1;
        macro_rules! raw {
            ($f:ident) => {{
                self.$f = Some(map.next_value()?);
                return Ok(());
            }};
        }
        match key.as_ref() {
            "blocking" => raw!(blocking),
            "title_match" => raw!(title_match),
            "accessible" => raw!(accessible),
            "queries" => {
                self.queries = Some(map.next_value()?);
                return Ok(());
            }
            "requests" => {
                self.requests = Some(map.next_value()?);
                return Ok(());
            }
            "tcp_connect" => {
                self.tcp_connect = Some(map.next_value()?);
                return Ok(());
            }
            "telegram_web_status" => raw!(telegram_web_status),
            "sent" => raw!(sent),
            "received" => raw!(received),
            "tor_logs" => raw!(tor_logs),
            "tor_log" => raw!(tor_log),
            "tor_progress" => raw!(tor_progress),
            "targets" => raw!(targets),
            "failure" => raw!(failure),
            "bootstrap_time" => raw!(bootstrap_time),
            "success" => raw!(success),
            "endpoint" => raw!(endpoint),
            "result" => raw!(result),
            "browser_name" => raw!(browser_name),
            "load_time_ms" => raw!(load_time_ms),
            "connection" => raw!(connection),
            "body_length_match" => raw!(body_length_match),
            "headers_match" => raw!(headers_match),
            "signal_backend_status" => raw!(signal_backend_status),
            "signal_backend_failure" => raw!(signal_backend_failure),
            "failed_operation" => raw!(failed_operation),
            "network_events" => raw!(network_events),
            "minivpn_version" => raw!(minivpn_version),
            "obfs4_version" => raw!(obfs4_version),
            "obfuscation" => raw!(obfuscation),
            "provider" => raw!(provider),
            "remote" => raw!(remote),
            "transport" => raw!(transport),
            "success_handshake" => raw!(success_handshake),
            "success_icmp" => raw!(success_icmp),
            "success_urlgrab" => raw!(success_urlgrab),
            k if k.starts_with("facebook_") => {
                if let Some(i) = FACEBOOK_KEYS.iter().position(|f| *f == k) {
                    self.facebook[i] = Some(map.next_value()?);
                    return Ok(());
                }
            }
            k if k.ends_with("_failure") => {
                let v: Raw<'a> = map.next_value()?;
                match self.failure_fields.iter_mut().find(|(fk, _)| *fk == key) {
                    Some(slot) => slot.1 = v,
                    None => self.failure_fields.push((key, v)),
                }
                return Ok(());
            }
            _ => {}
        }
        map.next_value::<IgnoredAny>()?;
        Ok(())
    }
}

/// The `content` of a `{format, content}` envelope.
pub(crate) enum Content<'a> {
    Object(Box<Measurement<'a>>),
    Text(Cow<'a, str>),
    Other,
}

impl<'de> Deserialize<'de> for Content<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Content::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Content::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Content::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Content::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Content::Other)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Content::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut m = Measurement::default();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    m.field(k, &mut map)?;
                }
                Ok(Content::Object(Box::new(m)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The top-level object: a bare measurement or a `{format, content}` POST envelope.
#[derive(Default)]
pub(crate) struct TopLevel<'a> {
    pub(crate) msm: Measurement<'a>,
    pub(crate) format: Option<Raw<'a>>,
    pub(crate) content: Option<Content<'a>>,
    pub(crate) is_verified: Option<Raw<'a>>,
    /// Keys other than `format`, `content` and `is_verified` were present.
    pub(crate) other_keys: bool,
}

impl<'a> FromMap<'a> for TopLevel<'a> {
    fn field<A: MapAccess<'a>>(&mut self, key: Cow<'a, str>, map: &mut A) -> Result<(), A::Error> {
        match key.as_ref() {
            "format" => self.format = Some(map.next_value()?),
            "content" => self.content = Some(map.next_value()?),
            "is_verified" => self.is_verified = Some(map.next_value()?),
            _ => {
                self.other_keys = true;
                self.msm.field(key, map)?;
            }
        }
        Ok(())
    }
}
