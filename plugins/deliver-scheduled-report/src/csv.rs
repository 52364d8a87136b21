//! CSV as RFC 4180 has it: CRLF line ends, fields quoted when they need to be.

pub fn render(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    line(&mut out, columns.iter().copied());
    for row in rows {
        line(&mut out, row.iter().map(String::as_str));
    }
    out
}

fn line<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_with_separators_are_quoted() {
        let rows = vec![vec!["a".to_owned(), "b, \"c\"".to_owned()], vec!["x\ny".to_owned(), String::new()]];
        assert_eq!(super::render(&["one", "two"], &rows), "one,two\r\na,\"b, \"\"c\"\"\"\r\n\"x\ny\",\r\n");
    }
}
