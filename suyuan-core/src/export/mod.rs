//! Writing tracking events (`model::tracking`) as files: the spreadsheet ([`rows`]) as CSV or XLSX, and the
//! EPCIS 2.0 document ([`epcis`]), with UN/CEFACT units ([`units`]).
//!
//! [`ExportWriter`] takes events a page at a time and writes them as they come: CSV and EPCIS straight to
//! the output, XLSX through a constant-memory sheet (each row goes to a temporary file once written), so a
//! period of a million events never sits in memory. Which events, and who may see them, is decided in
//! `store::exports`; this module only formats.

pub mod epcis;
pub mod rows;
pub mod units;

use std::io::{Seek, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook, XlsxError};

use crate::error::{CoreError, CoreResult};
use crate::model::{ExportFormat, TrackedEvent};
use crate::time::in_china;
use rows::{Cell, COLUMNS};

pub use epcis::Identifiers;

/// What an export's writer needs besides the events.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Names identifiers that have no GS1 key (EPCIS).
    pub ids: Identifiers,
    /// When the export was made (the EPCIS document's creation date).
    pub created: DateTime<Utc>,
}

/// Writes events in one of the export formats.
pub enum ExportWriter<W: Write + Seek + Send> {
    Csv(Box<csv::Writer<W>>),
    Xlsx(Box<XlsxSheet<W>>),
    Epcis(epcis::EpcisWriter<W>),
}

/// The workbook being written and where it goes when finished.
pub struct XlsxSheet<W> {
    workbook: Workbook,
    out: W,
    row: u32,
    time: Format,
    text: Format,
}

fn xlsx(e: XlsxError) -> CoreError {
    CoreError::Internal(format!("writing the workbook: {e}"))
}

fn csv_error(e: csv::Error) -> CoreError {
    CoreError::Internal(format!("writing the CSV: {e}"))
}

/// A UTF-8 byte-order mark: Excel reads a CSV file as UTF-8 (rather than the system's code page, GBK on
/// Chinese Windows) only when it starts with one.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most rows one sheet holds (Excel's limit, header included).
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

impl<W: Write + Seek + Send> ExportWriter<W> {
    /// Starts a file of `format` on `out` (the CSV's byte-order mark and header, the workbook's header row,
    /// the EPCIS document's head).
    pub fn new(format: ExportFormat, mut out: W, options: &WriteOptions) -> CoreResult<Self> {
        Ok(match format {
            ExportFormat::Csv => {
                out.write_all(UTF8_BOM)
                    .map_err(|e| CoreError::Internal(format!("writing the CSV: {e}")))?;
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(out);
                w.write_record(COLUMNS.iter().map(|c| c.header))
                    .map_err(csv_error)?;
                ExportWriter::Csv(Box::new(w))
            }
            ExportFormat::Xlsx => ExportWriter::Xlsx(Box::new(XlsxSheet::new(out)?)),
            ExportFormat::Epcis => ExportWriter::Epcis(epcis::EpcisWriter::new(
                out,
                options.ids.clone(),
                options.created,
            )?),
        })
    }

    /// Writes a page of events.
    pub fn write(&mut self, events: &[TrackedEvent]) -> CoreResult<()> {
        for event in events {
            match self {
                ExportWriter::Csv(w) => w
                    .write_record(rows::row(event).iter().map(Cell::to_text))
                    .map_err(csv_error)?,
                ExportWriter::Xlsx(sheet) => sheet.write(&rows::row(event))?,
                ExportWriter::Epcis(w) => w.write(event)?,
            }
        }
        Ok(())
    }

    /// Finishes the file and hands back the output.
    pub fn finish(self) -> CoreResult<W> {
        match self {
            ExportWriter::Csv(w) => w
                .into_inner()
                .map_err(|e| CoreError::Internal(format!("writing the CSV: {}", e.error()))),
            ExportWriter::Xlsx(sheet) => sheet.finish(),
            ExportWriter::Epcis(w) => w.finish(),
        }
    }
}

impl<W: Write + Seek + Send> XlsxSheet<W> {
    fn new(out: W) -> CoreResult<Self> {
        let mut workbook = Workbook::new();
        let header = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Top);
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?;
        sheet.set_name("追溯事件 Events").map_err(xlsx)?;
        for (i, c) in COLUMNS.iter().enumerate() {
            let col = u16::try_from(i).map_err(|e| CoreError::Internal(e.to_string()))?;
            sheet.set_column_width(col, c.width).map_err(xlsx)?;
            sheet
                .write_string_with_format(0, col, c.header, &header)
                .map_err(xlsx)?;
        }
        sheet.set_row_height(0, 30).map_err(xlsx)?;
        // The header stays in view and every column can be sorted and filtered.
        sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
        let last_col =
            u16::try_from(COLUMNS.len() - 1).map_err(|e| CoreError::Internal(e.to_string()))?;
        sheet
            .autofilter(0, 0, XLSX_MAX_ROWS - 1, last_col)
            .map_err(xlsx)?;
        Ok(XlsxSheet {
            workbook,
            out,
            row: 1,
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            text: Format::new(),
        })
    }

    fn write(&mut self, cells: &[Cell]) -> CoreResult<()> {
        if self.row >= XLSX_MAX_ROWS {
            return Err(CoreError::invalid(
                "export_too_large",
                "an XLSX sheet holds at most 1,048,575 events; export a shorter period or as CSV",
            ));
        }
        let sheet = self.workbook.worksheet_from_index(0).map_err(xlsx)?;
        for (i, cell) in cells.iter().enumerate() {
            let col = u16::try_from(i).map_err(|e| CoreError::Internal(e.to_string()))?;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    sheet
                        .write_string_with_format(self.row, col, s, &self.text)
                        .map_err(xlsx)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(self.row, col, *n).map_err(xlsx)?;
                }
                Cell::Time(t) => {
                    sheet
                        .write_datetime_with_format(self.row, col, excel_time(*t)?, &self.time)
                        .map_err(xlsx)?;
                }
            }
        }
        self.row += 1;
        Ok(())
    }

    fn finish(mut self) -> CoreResult<W> {
        // The filter covers the rows written, so every column can be sorted and filtered.
        let last_row = self.row.saturating_sub(1).max(1);
        let last_col =
            u16::try_from(COLUMNS.len() - 1).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.workbook
            .worksheet_from_index(0)
            .map_err(xlsx)?
            .autofilter(0, 0, last_row, last_col)
            .map_err(xlsx)?;
        self.workbook.save_to_writer(&mut self.out).map_err(xlsx)?;
        Ok(self.out)
    }
}

/// A time as an Excel date-time in China time (a sheet's times have no zone; the header says which).
fn excel_time(t: DateTime<Utc>) -> CoreResult<ExcelDateTime> {
    let local = in_china(t);
    let date = |v: u32| u8::try_from(v).map_err(|e| CoreError::Internal(e.to_string()));
    let year = u16::try_from(local.year()).map_err(|e| CoreError::Internal(e.to_string()))?;
    ExcelDateTime::from_ymd(year, date(local.month())?, date(local.day())?)
        .and_then(|d| {
            d.and_hms(
                u16::try_from(local.hour()).unwrap_or(0),
                u8::try_from(local.minute()).unwrap_or(0),
                f64::from(local.second()),
            )
        })
        .map_err(xlsx)
}
