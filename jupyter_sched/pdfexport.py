"""The process that prints one notebook as a PDF: ``python -m jupyter_sched.pdfexport
--chromium PATH`` reads the executed notebook on its standard input and writes the PDF on
its standard output (started by :func:`jupyter_sched.pdf.render_pdf`, never by the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters.webpdf import WebPDFExporter
from traitlets import Unicode

#: Chromium flags for a headless print in a container: no GPU, no background traffic.
BROWSER_ARGS = (
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class ChromiumPDFExporter(WebPDFExporter):
    """nbconvert's WebPDF exporter on a given Chromium executable.

    nbconvert launches playwright's own browser build (``chromium.launch`` without an
    executable), which is downloaded by ``playwright install`` and absent here; this
    launches ``executable_path`` instead, with the same print steps.
    """

    executable_path = Unicode(help="The Chromium (or Chrome) executable that prints.").tag(
        config=True
    )

    def run_playwright(self, html: str) -> bytes:
        """The PDF of the page ``html``, printed by :attr:`executable_path`."""
        with tempfile.TemporaryDirectory(prefix="sched-pdf-") as folder:
            page = Path(folder) / "notebook.html"
            page.write_text(html, encoding="utf-8")
            return asyncio.run(self._print(page))

    async def _print(self, page_file: Path) -> bytes:
        from playwright.async_api import async_playwright

        args = [*BROWSER_ARGS, *self.browser_args]
        if self.disable_sandbox:
            args.append("--no-sandbox")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=self.executable_path,
                args=args,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
            try:
                page = await browser.new_page()
                await page.emulate_media(media="print")
                await page.goto(page_file.as_uri(), wait_until="networkidle")
                # output scripts (plots drawn by JavaScript) get time to draw
                await page.wait_for_timeout(self.page_render_timeout)
                pdf: bytes = await page.pdf(print_background=True)
                return pdf
            finally:
                await browser.close()


def notebook_pdf(nb: Any, chromium: str) -> bytes:
    """The notebook ``nb`` printed as a PDF by the Chromium at ``chromium``."""
    exporter = ChromiumPDFExporter(  # type: ignore[no-untyped-call]
        executable_path=chromium,
        # Chromium refuses to start as root with its sandbox (containers, root workers).
        disable_sandbox=os.geteuid() == 0,
    )
    pdf, _ = exporter.from_notebook_node(nb)  # type: ignore[no-untyped-call]
    return bytes(pdf)


def main(argv: list[str] | None = None) -> int:
    """Read a notebook on stdin, write its PDF on stdout."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_sched.pdfexport")
    parser.add_argument("--chromium", required=True, help="the Chromium executable")
    options = parser.parse_args(argv)
    nb = nbformat.reads(sys.stdin.buffer.read().decode("utf-8"), as_version=4)
    sys.stdout.buffer.write(notebook_pdf(nb, options.chromium))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
