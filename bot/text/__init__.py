"""Pure text processing for Chinese owner messages: normalisation, dates, amounts, entities."""
