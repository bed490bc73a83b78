//! PDF documents made on the server (a volunteer's service certificate, a
//! region's monthly report): A4 pages of text lines and rules, written with
//! `krilla`. Text may mix Tibetan with Chinese and Latin: each line is cut into
//! runs by script, each run shaped (Tibetan stacks need shaping) and drawn
//! with the font for its script, the next run starting where the last ended.
//! Fonts are the system's (Noto Serif Tibetan, Noto Sans CJK), read once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("font {path}: {reason}")]
    Font { path: PathBuf, reason: String },
    #[error("cannot write the PDF: {0}")]
    Write(String),
}

/// The fonts documents are set in.
#[derive(Clone)]
pub struct Fonts {
    tibetan: Arc<Vec<u8>>,
    cjk: Arc<Vec<u8>>,
    /// The Simplified Chinese face's index in the CJK collection.
    cjk_index: u32,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts").field("cjk_index", &self.cjk_index).finish_non_exhaustive()
    }
}

impl Fonts {
    /// Reads a Tibetan font and a CJK font or collection (of which the face
    /// named "… SC", for Simplified Chinese, else the first).
    pub fn load(tibetan: &Path, cjk: &Path) -> Result<Fonts, PdfError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| PdfError::Font { path: path.to_owned(), reason: e.to_string() })
        };
        let (tibetan_data, cjk_data) = (read(tibetan)?, read(cjk)?);
        let unusable =
            |path: &Path| PdfError::Font { path: path.to_owned(), reason: "not a font this can read".into() };
        rustybuzz::Face::from_slice(&tibetan_data, 0).ok_or_else(|| unusable(tibetan))?;
        let faces = rustybuzz::ttf_parser::fonts_in_collection(&cjk_data).unwrap_or(1);
        let simplified = (0..faces).find(|&i| {
            rustybuzz::ttf_parser::Face::parse(&cjk_data, i).is_ok_and(|face| {
                face.names().into_iter().any(|name| name.to_string().is_some_and(|n| n.ends_with(" SC")))
            })
        });
        let cjk_index = simplified.unwrap_or(0);
        rustybuzz::Face::from_slice(&cjk_data, cjk_index).ok_or_else(|| unusable(cjk))?;
        Ok(Fonts { tibetan: Arc::new(tibetan_data), cjk: Arc::new(cjk_data), cjk_index })
    }

    fn face(&self, script: Script) -> (&[u8], u32) {
        match script {
            Script::Tibetan => (&self.tibetan, 0),
            Script::Other => (&self.cjk, self.cjk_index),
        }
    }

    /// The advance of `text` at `size` points, shaped.
    fn run_width(&self, script: Script, text: &str, size: f32) -> f32 {
        let (data, index) = self.face(script);
        let Some(face) = rustybuzz::Face::from_slice(data, index) else { return 0.0 };
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&face, &[], buffer);
        let units: i32 = shaped.glyph_positions().iter().map(|p| p.x_advance).sum();
        units as f32 * size / f32::from(face.units_per_em() as u16)
    }

    /// The width of a line of text at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        runs(text).iter().map(|(script, run)| self.run_width(*script, run, size)).sum()
    }

    /// `text`, cut short with "…" if it is wider than `max` points.
    pub fn fit(&self, text: &str, size: f32, max: f32) -> String {
        if self.width(text, size) <= max {
            return text.to_owned();
        }
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let cut: String = chars.iter().collect::<String>().trim_end().to_owned() + "…";
            if self.width(&cut, size) <= max {
                return cut;
            }
        }
        String::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Tibetan,
    /// Chinese, Latin, digits: the CJK font has them all.
    Other,
}

fn script_of(c: char) -> Option<Script> {
    if ('\u{0F00}'..='\u{0FFF}').contains(&c) {
        Some(Script::Tibetan)
    } else if c.is_whitespace() || c.is_ascii_punctuation() {
        None // goes with the run it is in
    } else {
        Some(Script::Other)
    }
}

/// `text` cut where the script changes; spaces and punctuation stay with the run before.
fn runs(text: &str) -> Vec<(Script, String)> {
    let mut runs: Vec<(Script, String)> = Vec::new();
    for c in text.chars() {
        let script = script_of(c);
        match runs.last_mut() {
            Some((current, run)) if script.is_none_or(|s| s == *current) => run.push(c),
            _ => runs.push((script.unwrap_or(Script::Other), c.to_string())),
        }
    }
    runs
}

#[derive(Debug)]
enum Mark {
    Text { x: f32, y: f32, size: f32, text: String },
    Rule { x: f32, y: f32, width: f32, height: f32 },
}

/// A document being drawn: marks on pages, written out by [`Draft::finish`].
/// Coordinates are points from the page's top left; a text's `y` is its baseline.
#[derive(Debug)]
pub struct Draft {
    fonts: Fonts,
    pages: Vec<Vec<Mark>>,
}

impl Draft {
    pub fn new(fonts: Fonts) -> Draft {
        Draft { fonts, pages: vec![Vec::new()] }
    }

    pub fn fonts(&self) -> &Fonts {
        &self.fonts
    }

    fn page(&mut self) -> &mut Vec<Mark> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    pub fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        self.page().push(Mark::Text { x, y, size, text: text.to_owned() });
    }

    /// Text ending at `right`.
    pub fn text_right(&mut self, right: f32, y: f32, size: f32, text: &str) {
        let x = right - self.fonts.width(text, size);
        self.text(x, y, size, text);
    }

    /// Text centred on the page.
    pub fn text_centred(&mut self, y: f32, size: f32, text: &str) {
        let x = (PAGE_WIDTH - self.fonts.width(text, size)) / 2.0;
        self.text(x, y, size, text);
    }

    /// A filled rectangle: a line when thin.
    pub fn rule(&mut self, x: f32, y: f32, width: f32, height: f32) {
        self.page().push(Mark::Rule { x, y, width, height });
    }

    pub fn new_page(&mut self) {
        self.pages.push(Vec::new());
    }

    /// The PDF, with `title` in its metadata.
    pub fn finish(self, title: &str) -> Result<Vec<u8>, PdfError> {
        let tibetan = Font::new(self.fonts.tibetan.clone().into(), 0)
            .ok_or_else(|| PdfError::Write("the Tibetan font".into()))?;
        let cjk = Font::new(self.fonts.cjk.clone().into(), self.fonts.cjk_index)
            .ok_or_else(|| PdfError::Write("the CJK font".into()))?;
        let mut document = Document::new();
        document.set_metadata(Metadata::new().title(title.to_owned()).creator("Cloud Law Office".to_owned()));
        let settings =
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or_else(|| PdfError::Write("page".into()))?;
        for marks in &self.pages {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            for mark in marks {
                match mark {
                    Mark::Text { x, y, size, text } => {
                        let mut x = *x;
                        for (script, run) in runs(text) {
                            let font = if script == Script::Tibetan { tibetan.clone() } else { cjk.clone() };
                            surface.draw_text(
                                Point::from_xy(x, *y),
                                font,
                                *size,
                                &run,
                                false,
                                TextDirection::Auto,
                            );
                            x += self.fonts.run_width(script, &run, *size);
                        }
                    }
                    Mark::Rule { x, y, width, height } => {
                        let mut path = PathBuilder::new();
                        if let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) {
                            path.push_rect(rect);
                        }
                        if let Some(path) = path.finish() {
                            surface.draw_path(&path);
                        }
                    }
                }
            }
            surface.finish();
            page.finish();
        }
        document.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_where_the_script_changes() {
        let cut = runs("སྐད་ཆ། 法律援助 Legal aid (7) བཀྲ་ཤིས།");
        let scripts: Vec<Script> = cut.iter().map(|(s, _)| *s).collect();
        assert_eq!(scripts, [Script::Tibetan, Script::Other, Script::Tibetan]);
        assert_eq!(cut[0].1, "སྐད་ཆ། ");
        assert_eq!(cut[1].1, "法律援助 Legal aid (7) ");
        assert_eq!(runs("").len(), 0);
        assert_eq!(runs(" 12").len(), 1);
    }
}
