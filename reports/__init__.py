"""Daily, weekly, generation and stress reports (Markdown + self-contained HTML) and artifacts."""
