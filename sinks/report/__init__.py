"""The weekly public-opinion report (舆情周报): ClickHouse -> self-contained HTML / Markdown."""
