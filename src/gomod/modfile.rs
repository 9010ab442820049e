//! The one thing a proxy needs from a go.mod: its `module` directive.
//!
//! The whole file is tokenized and split into statements the way
//! `golang.org/x/mod/modfile` does, so a syntax error anywhere (an unterminated
//! string or block, a `/* */` comment, a stray control character) fails the file as
//! it fails the go command. Directives other than `module` are then ignored, as
//! `modfile.ParseLax` ignores what a dependency's go.mod need not get right.

use super::GoModError;

/// Returns the module path declared by a go.mod file (the `module` directive,
/// quoted or bare, comments allowed, `module ( ... )` block form too). Errors if the
/// file is not UTF-8, has no module directive, or has more than one.
pub fn module_path(gomod: &[u8]) -> Result<String, GoModError> {
    let text = std::str::from_utf8(gomod)
        .map_err(|e| invalid(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    let tokens = Lexer::new(text).tokenize()?;
    let mut found: Option<String> = None;
    for stmt in statements(&tokens)? {
        if stmt.verb != "module" {
            continue;
        }
        let line = stmt.line;
        if found.is_some() {
            return Err(invalid(format!("line {line}: repeated module statement")));
        }
        let [arg] = stmt.args[..] else {
            return Err(invalid(format!("line {line}: usage: module module/path")));
        };
        let path = parse_string(arg).map_err(|e| invalid(format!("line {line}: {e}")))?;
        super::path::check_import_path(&path).map_err(|e| invalid(format!("line {line}: {e}")))?;
        found = Some(path);
    }
    found.ok_or_else(|| invalid("no module directive".into()))
}

fn invalid(reason: String) -> GoModError {
    GoModError::InvalidGoMod(reason)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `\n`, an end-of-line comment (which swallows its `\n`), or the end of input.
    Eol,
    /// A comment alone on its line; it swallows its `\n` too.
    LineComment,
    LParen,
    RParen,
    /// Anything else that can be a directive's word: identifiers, quoted strings and
    /// the punctuation `[ ] { } ,`.
    Word,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    line: usize,
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
    }

    fn error(&self, what: &str) -> GoModError {
        invalid(format!("line {}: {what}", self.line))
    }

    /// The token list always ends with an `Eol` standing for the end of input.
    fn tokenize(mut self) -> Result<Vec<Token<'a>>, GoModError> {
        let mut tokens = Vec::new();
        loop {
            while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
                self.bump(c);
            }
            let (start, line) = (self.pos, self.line);
            let Some(c) = self.peek() else {
                tokens.push(Token {
                    kind: Kind::Eol,
                    text: "",
                    line,
                });
                return Ok(tokens);
            };
            let kind = if self.rest().starts_with("//") {
                let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
                let alone = self.text[line_start..start].trim().is_empty();
                self.skip_comment();
                if alone { Kind::LineComment } else { Kind::Eol }
            } else if self.rest().starts_with("/*") {
                return Err(self.error("mod files must use // comments (not /* */ comments)"));
            } else {
                match c {
                    '\n' | '(' | ')' | '[' | ']' | '{' | '}' | ',' => {
                        self.bump(c);
                        match c {
                            '\n' => Kind::Eol,
                            '(' => Kind::LParen,
                            ')' => Kind::RParen,
                            _ => Kind::Word,
                        }
                    }
                    '"' | '`' => {
                        self.skip_string(c)?;
                        Kind::Word
                    }
                    _ if is_ident(c) => {
                        self.skip_ident()?;
                        Kind::Word
                    }
                    _ => return Err(self.error(&format!("unexpected input character {c:?}"))),
                }
            };
            tokens.push(Token {
                kind,
                text: &self.text[start..self.pos],
                line,
            });
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            self.bump(c);
            if c == '\n' {
                break;
            }
        }
    }

    fn skip_string(&mut self, quote: char) -> Result<(), GoModError> {
        self.bump(quote);
        loop {
            match self.peek() {
                None => return Err(self.error("unexpected EOF in string")),
                Some('\n') => return Err(self.error("unexpected newline in string")),
                Some(c) => {
                    self.bump(c);
                    if c == quote {
                        return Ok(());
                    }
                    if c == '\\' && quote == '"' {
                        match self.peek() {
                            None => return Err(self.error("unexpected EOF in string")),
                            Some(escaped) => self.bump(escaped),
                        }
                    }
                }
            }
        }
    }

    fn skip_ident(&mut self) -> Result<(), GoModError> {
        while let Some(c) = self.peek().filter(|&c| is_ident(c)) {
            if self.rest().starts_with("//") {
                break;
            }
            if self.rest().starts_with("/*") {
                return Err(self.error("mod files must use // comments (not /* */ comments)"));
            }
            self.bump(c);
        }
        Ok(())
    }
}

/// modfile's identifier runes: printable, not space, not its punctuation.
fn is_ident(c: char) -> bool {
    !matches!(c, ' ' | '(' | ')' | '[' | ']' | '{' | '}' | ',')
        && !c.is_whitespace()
        && is_printable(c)
}

/// An approximation of Go's `unicode.IsPrint` (std has no general category): control
/// characters, the usual invisible format characters and private-use code points
/// are not printable. Only which malformed files are rejected depends on the gaps.
fn is_printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
            | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}'
            | '\u{f0000}'..='\u{10ffff}'))
}

/// One directive: a line at top level, or a line inside `verb ( ... )`.
struct Statement<'a> {
    verb: &'a str,
    args: Vec<&'a str>,
    line: usize,
}

/// Groups tokens into directives following modfile's grammar: a `(` that ends a
/// line opens a block whose lines share the words before it, `( )` on one line is an
/// empty block, and a block closes with a `)` that is alone on its line.
fn statements<'a>(tokens: &[Token<'a>]) -> Result<Vec<Statement<'a>>, GoModError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(tok) = tokens.get(i) {
        match tok.kind {
            Kind::LineComment | Kind::Eol => i += 1,
            _ => {
                let (words, next, block) = read_line(tokens, i, true);
                i = next;
                match block {
                    Block::None => {
                        if let Some((verb, args)) = words.split_first() {
                            out.push(Statement {
                                verb,
                                args: args.to_vec(),
                                line: tok.line,
                            });
                        }
                    }
                    Block::Empty => {}
                    Block::Open => {
                        i = read_block(tokens, i, &words, &mut out)?;
                    }
                }
            }
        }
    }
    Ok(out)
}

enum Block {
    None,
    Empty,
    Open,
}

/// Reads the words of one line starting at `i`; returns them, the index after the
/// line's end, and whether the line opens a block (only possible at top level).
fn read_line<'a>(
    tokens: &[Token<'a>],
    mut i: usize,
    top_level: bool,
) -> (Vec<&'a str>, usize, Block) {
    let kind_at = |j: usize| tokens.get(j).map_or(Kind::Eol, |t| t.kind);
    let mut words = Vec::new();
    while let Some(tok) = tokens.get(i) {
        // The first token is a word whatever it is; only later ones can end the line.
        if !words.is_empty() && tok.kind == Kind::Eol {
            return (words, i + 1, Block::None);
        }
        if top_level && !words.is_empty() && tok.kind == Kind::LParen {
            if kind_at(i + 1) == Kind::Eol {
                // The newline after `(` is left for the block reader, like a blank line.
                return (words, i + 1, Block::Open);
            }
            if kind_at(i + 1) == Kind::RParen && kind_at(i + 2) == Kind::Eol {
                return (words, i + 3, Block::Empty);
            }
        }
        words.push(tok.text);
        i += 1;
    }
    (words, i, Block::None)
}

fn read_block<'a>(
    tokens: &[Token<'a>],
    mut i: usize,
    header: &[&'a str],
    out: &mut Vec<Statement<'a>>,
) -> Result<usize, GoModError> {
    let start_line = tokens.get(i).map_or(0, |t| t.line);
    loop {
        let Some(tok) = tokens.get(i) else {
            return Err(invalid(format!(
                "line {start_line}: syntax error (unterminated block)"
            )));
        };
        match tok.kind {
            Kind::Eol if i + 1 == tokens.len() => {
                return Err(invalid(format!(
                    "line {start_line}: syntax error (unterminated block)"
                )));
            }
            Kind::Eol | Kind::LineComment => i += 1,
            Kind::RParen => {
                if tokens.get(i + 1).map(|t| t.kind) != Some(Kind::Eol) {
                    return Err(invalid(format!(
                        "line {}: syntax error (expected newline after closing paren)",
                        tok.line
                    )));
                }
                return Ok(i + 2);
            }
            _ => {
                let (words, next, _) = read_line(tokens, i, false);
                i = next;
                // modfile only understands blocks introduced by a single verb.
                if let [verb] = header {
                    out.push(Statement {
                        verb,
                        args: words,
                        line: tok.line,
                    });
                }
            }
        }
    }
}

/// modfile's `parseString` for an argument: a double-quoted Go string is unquoted,
/// a backquoted one is taken raw (as `modfile.ModulePath` does), and any other quote
/// character in a bare word is an error.
fn parse_string(word: &str) -> Result<String, String> {
    if let Some(body) = word.strip_prefix('"') {
        let body = body
            .strip_suffix('"')
            .ok_or_else(|| "invalid quoted string".to_owned())?;
        return unquote(body).map_err(|e| format!("invalid quoted string: {e}"));
    }
    if let Some(body) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        // strconv.Unquote drops carriage returns from raw strings.
        return Ok(body.chars().filter(|&c| c != '\r').collect());
    }
    if word.contains(['"', '\'', '`']) {
        return Err("unquoted string cannot contain quote".into());
    }
    Ok(word.to_owned())
}

/// The body of a Go double-quoted string literal (`strconv.Unquote`).
fn unquote(body: &str) -> Result<String, String> {
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            return Err("unescaped quote".into());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let escaped = chars.next().ok_or("trailing backslash")?;
        let simple = match escaped {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        match escaped {
            // \x and octal escapes denote single bytes, which may not be UTF-8 alone.
            'x' => out.push(digits(&mut chars, 2, 16).and_then(byte_value)?),
            '0'..='7' => {
                let rest = digits(&mut chars, 2, 8)?;
                let first = escaped.to_digit(8).ok_or("bad octal escape")?;
                out.push(byte_value(first * 64 + rest)?);
            }
            'u' | 'U' => {
                let n = if escaped == 'u' { 4 } else { 8 };
                let c = char::from_u32(digits(&mut chars, n, 16)?).ok_or("invalid code point")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(format!("unknown escape \\{other}")),
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".to_owned())
}

fn digits(chars: &mut std::str::Chars<'_>, n: usize, radix: u32) -> Result<u32, String> {
    (0..n).try_fold(0u32, |acc, _| {
        let d = chars
            .next()
            .and_then(|c| c.to_digit(radix))
            .ok_or("malformed escape")?;
        Ok(acc * radix + d)
    })
}

fn byte_value(v: u32) -> Result<u8, String> {
    u8::try_from(v).map_err(|_| "escape value out of range".to_owned())
}

#[cfg(test)]
#[path = "modfile_tests.rs"]
mod tests;
