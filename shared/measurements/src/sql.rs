//! A small SQL builder for the read API. Text comes only from `&'static str` fragments written
//! here (column names and expressions from fixed allow-lists); every value a client sent is a
//! bound parameter (`?`, escaped by the clickhouse crate's `.bind()`), never spliced into text.

use clickhouse::query::Query;

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    U32(u32),
    U64(u64),
    I64(i64),
    Strs(Vec<String>),
    U32s(Vec<u32>),
    U64s(Vec<u64>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::Strs(v)
    }
}
impl From<Vec<u32>> for Value {
    fn from(v: Vec<u32>) -> Self {
        Value::U32s(v)
    }
}
impl From<Vec<u64>> for Value {
    fn from(v: Vec<u64>) -> Self {
        Value::U64s(v)
    }
}

/// SQL text with `?` placeholders and their values, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    text: String,
    binds: Vec<Value>,
}

impl Sql {
    pub fn new(text: &'static str) -> Self {
        Sql {
            text: text.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends fixed text (no placeholders).
    pub fn push(&mut self, text: &'static str) -> &mut Self {
        debug_assert!(!text.contains('?'), "use push_bind for placeholders");
        self.text.push_str(text);
        self
    }

    /// Appends text holding exactly one `?` and its value.
    pub fn push_bind(&mut self, text: &'static str, value: impl Into<Value>) -> &mut Self {
        debug_assert_eq!(
            text.matches('?').count(),
            1,
            "one placeholder per push_bind"
        );
        self.text.push_str(text);
        self.binds.push(value.into());
        self
    }

    /// Appends another builder (its text and values).
    pub fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.binds.extend(other.binds);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn binds(&self) -> &[Value] {
        &self.binds
    }

    /// The query on `client` with every value bound.
    pub fn to_query(&self, client: &clickhouse::Client) -> Query {
        let mut q = client.query(&self.text);
        for b in &self.binds {
            q = match b {
                Value::Str(s) => q.bind(s.as_str()),
                Value::U32(v) => q.bind(*v),
                Value::U64(v) => q.bind(*v),
                Value::I64(v) => q.bind(*v),
                Value::Strs(v) => q.bind(v),
                Value::U32s(v) => q.bind(v),
                Value::U64s(v) => q.bind(v),
            };
        }
        q
    }

    /// The final SQL with values escaped in (for logs and tests).
    pub fn render(&self) -> String {
        self.to_query(&clickhouse::Client::default())
            .sql_display()
            .to_string()
    }
}

/// A conjunction of conditions, each fixed text with its own bound values.
#[derive(Debug, Clone, Default)]
pub struct Where {
    parts: Vec<Sql>,
}

impl Where {
    pub fn new() -> Self {
        Where::default()
    }

    /// A condition without values.
    pub fn fixed(&mut self, text: &'static str) -> &mut Self {
        self.parts.push(Sql::new(text));
        self
    }

    /// A condition with one `?`.
    pub fn bind(&mut self, text: &'static str, value: impl Into<Value>) -> &mut Self {
        let mut s = Sql::default();
        s.push_bind(text, value);
        self.parts.push(s);
        self
    }

    /// A condition built elsewhere.
    pub fn sql(&mut self, sql: Sql) -> &mut Self {
        self.parts.push(sql);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// ` WHERE a AND b` (or nothing).
    pub fn into_sql(self) -> Sql {
        let mut out = Sql::default();
        for (i, part) in self.parts.into_iter().enumerate() {
            out.push(if i == 0 { " WHERE " } else { " AND " });
            out.append(part);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn client_values_are_escaped_never_spliced() {
        let mut w = Where::new();
        w.bind("input = ?", "x' OR 1=1 --")
            .bind("probe_cc IN ?", vec!["IT".to_string(), "D'E".to_string()]);
        let mut q = Sql::new("SELECT 1 FROM fastpath");
        q.append(w.into_sql());
        let rendered = q.render();
        assert_eq!(
            rendered,
            r"SELECT 1 FROM fastpath WHERE input = 'x\' OR 1=1 --' AND probe_cc IN ['IT','D\'E']"
        );
    }

    #[test]
    fn an_empty_where_renders_nothing() {
        let mut q = Sql::new("SELECT 1");
        q.append(Where::new().into_sql());
        assert_eq!(q.render(), "SELECT 1");
    }

    #[test]
    fn numbers_and_lists_of_numbers_bind_as_literals() {
        let mut q = Sql::new("SELECT 1");
        q.push_bind(" WHERE probe_asn IN ?", vec![3303u32, 8167])
            .push_bind(" LIMIT ?", 10u64);
        assert_eq!(
            q.render(),
            "SELECT 1 WHERE probe_asn IN [3303,8167] LIMIT 10"
        );
    }
}
