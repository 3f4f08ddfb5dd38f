"""The paper's technical claims that the book checks (the claims ledger, notebooks/10_claims).

Each entry: number -> (the paper's section, a short verbatim quotation of the claim, the chapter
that checks it). The quotations are from Salvaggio, "The Market in the Model" (arXiv:2606.19151),
each at most a sentence and at most 25 words. Values and verdicts are not here: each chapter records
them with ``lds.claim`` when it runs, and :func:`collect` gathers them from the executed notebooks
for the ledger (:func:`ledger_html`).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

CLAIMS = {
    1: ("Theoretical Framework and Methodology",
        "even the most basic latent diffusion model is not a neural network but at least three",
        "01_ensemble"),
    2: ("A Two-Phase Architecture",
        "This cut the computational cost enough to run on consumer hardware, the commercially viable system "
        "the team was after.",
        "01_ensemble"),
    3: ("CLIP",
        "a numerical score for how well any image matches any caption — a score the rest of the pipeline "
        "uses to filter, sort, and evaluate",
        "02_clip_filtered_web"),
    4: ("CLIP",
        "One ideological orientation of CLIP is visible in what it filters out: images without captions, or "
        "with captions that deviate from English-language text conventions.",
        "02_clip_filtered_web"),
    5: ("CLIP",
        "Two images of dogs sit near each other; a dog and a bicycle sit far apart.",
        "02_clip_filtered_web"),
    6: ("Tokenization and CLIP",
        "CLIP’s text encoder uses a 49,152-token vocabulary",
        "05_tokenization"),
    7: ("Tokenization and CLIP",
        "Words that appear more often in image-text contexts have dedicated tokens; everything else is broken "
        "into sub-word units, their specificity lost.",
        "05_tokenization"),
    8: ("Tokenization and CLIP",
        "The text encoder maps these tokens into a 768-dimensional vector space.",
        "05_tokenization"),
    9: ("The Autoencoder",
        "Something is always lost in compression, so the decoder can only reconstruct a plausible-seeming "
        "substitute.",
        "03_autoencoder"),
    10: ("The Autoencoder",
         "a patch-based adversarial objective from pix2pix asks, for every 70×70-pixel window, “Does this "
         "look real?”",
         "03_autoencoder"),
    11: ("The Autoencoder",
         "Esser and colleagues integrated this objective into the LDM via VQGAN (2020)",
         "03_autoencoder"),
    12: ("The Autoencoder",
         "Noise in the Latent Diffusion Model had no structure for perceptual loss to measure, no local "
         "texture resembling anything in the training data",
         "03_autoencoder"),
    13: ("The Autoencoder (Fig. 01)",
         "Asked to represent the impossible, it generates the substrate of visual plausibility, but, to the "
         "human eye, it depicts nothing at all.",
         "07_denoising"),
    14: ("U-Net (Encoding)",
         "U-Net compresses the limited images available to it until only outlines are visible, then expands "
         "and restores spatial details through skip connections.",
         "04_unet_training"),
    15: ("U-Net (Decoding)",
         "At the start, it has no presence at all, converging quickly on rough outlines.",
         "07_denoising"),
    16: ("U-Net (Decoding)",
         "adapting the scope of detail it can refine based on the number of steps it has been given",
         "07_denoising"),
    17: ("The Transformer / Attention Mechanism",
         "the word “fancy” exists in the vocabulary but loses its significance against “African man and "
         "house”",
         "06_cross_attention"),
    18: ("The Transformer / Attention Mechanism",
         "The user who learned to add them to every prompt discovered which tokens are most valued within "
         "the model’s perceptual framework.",
         "06_cross_attention"),
    19: ("Classifier-Free Guidance",
         "randomly dropping the text prompt during training, so the one network learns to predict both with "
         "and without conditioning",
         "08_guidance"),
    20: ("Classifier-Free Guidance (Fig. 02, CFG 00)",
         "The prompt has no influence and any association with ‘commodity’ is the user’s.",
         "08_guidance"),
    21: ("Classifier-Free Guidance",
         "At extreme levels, this distinction overemphasizes the prompt, saturating it while eliminating "
         "other context to the point of complete semantic collapse.",
         "08_guidance"),
    22: ("Classifier-Free Guidance",
         "The question it really answers is how far is this image from the statistical center for the "
         "prompt?",
         "08_guidance"),
    23: ("Tokenization and CLIP",
         "A statistically correct racial distribution would not influence the model, which doesn’t generate "
         "from that distribution but from the most represented composite.",
         "07_denoising"),
    24: ("The Transformer / Attention Mechanism",
         "the mean image, which replaces “likenesses with likelinesses,” converging on the statistically "
         "dominant rather than the particular",
         "08_guidance"),
}

NOT_CHECKED = "not checked in this run"
NOT_STATED = "not stated by the chapter"  # a finding recorded without its test or threshold
CHAPTER_GLOB = "0[1-9]_*.ipynb"  # the chapters that check claims, 01 to 09


def _title(notebook: Path) -> str:
    """The chapter's title: its first Markdown heading, without the leading '#'."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            match = re.search(r"^#\s+(.+)$", source, flags=re.M)
            if match:
                return match.group(1).strip()
    return Path(notebook).stem


def collect(executed_dir: str | Path) -> dict:
    """Every ``claim:N`` record of the executed chapters 01-09 in ``executed_dir``.

    Returns ``{number: [finding, ...]}`` for all 24 claims (an empty list: no chapter checked it),
    each finding the dict ``lds.claim`` recorded plus ``chapter`` (stem) and ``title``; findings are
    in chapter order. A claim number that is not in :data:`CLAIMS` raises, so a typo cannot vanish.
    """
    from .record import CLAIM_PREFIX, read_records

    found = {n: [] for n in CLAIMS}
    for notebook in sorted(Path(executed_dir).glob(CHAPTER_GLOB)):
        records = read_records(notebook)
        title = None
        for name, row in records.items():
            if not name.startswith(CLAIM_PREFIX):
                continue
            number = int(name[len(CLAIM_PREFIX):])
            if number not in CLAIMS:
                raise ValueError(f"{notebook.name} records claim {number}, which is not in lds.claims.CLAIMS "
                                 f"(numbers 1-{max(CLAIMS)}).")
            title = title or _title(notebook)
            found[number].append({**row, "number": number, "chapter": notebook.stem, "title": title})
    return found


def summary(found: dict) -> dict:
    """Counts for the ledger: claims checked, and claims per verdict (a claim's first finding)."""
    from .record import VERDICTS

    checked = sorted(n for n, rows in found.items() if rows)
    per_verdict = {v: 0 for v in VERDICTS}
    for n in checked:
        per_verdict[found[n][0]["verdict"]] += 1
    per_verdict[NOT_CHECKED] = len(found) - len(checked)
    return {"checked": len(checked), "numbers": checked, "per_verdict": per_verdict}


def _cell(text: str) -> str:
    return html.escape(str(text)).replace("\n", "<br>")


def ledger_html(found: dict, link_suffix: str = ".html") -> str:
    """The ledger as one HTML table (no pandas): a row per finding, or per claim not checked.

    Five columns: the claim (number), the paper's words (quotation and section), the test (what was
    measured, the threshold the verdict turns on with its reason, and the counts behind it), what the
    book found (lds-mini value, Stable Diffusion 1.5 value and its source, the chapter as a link and the
    cell) and the verdict (with its note). Chapter links are relative
    (``05_tokenization.html``), which is where the built book puts the chapters beside the ledger;
    pass ``link_suffix=".ipynb"`` for links between notebooks.
    """
    head = ('<th style="width:3em">#</th><th style="width:26%">The paper says</th>'
            '<th style="width:26%">Test and threshold</th>'
            "<th>What the book found</th><th style=\"width:15%\">Verdict</th>")
    rows = []
    for number, (section, quote, chapter) in sorted(CLAIMS.items()):
        lead = f"<td>{number}</td><td>“{_cell(quote)}”<br><small>{_cell(section)}</small></td>"
        findings = found.get(number) or []
        if not findings:
            rows.append(f'<tr class="lds-unchecked">{lead}<td></td><td><small>to be checked in {_cell(chapter)}</small></td>'
                        f"<td><em>{NOT_CHECKED}</em></td></tr>")
        for row in findings:
            where = f'<a href="{html.escape(row["chapter"] + link_suffix)}">{_cell(row["title"])}</a>'
            if row.get("cell"):
                where += f", {_cell(row['cell'])}"
            result = (f"<strong>lds-mini:</strong> {_cell(row.get('lds_mini', ''))}<br>"
                      f"<strong>Stable Diffusion 1.5:</strong> {_cell(row.get('sd15', ''))}<br>"
                      f"<small>Checked in {where}</small>")
            test = (f"<strong>Test:</strong> {_cell(row.get('test') or NOT_STATED)}<br>"
                    f"<strong>Threshold:</strong> {_cell(row.get('threshold') or NOT_STATED)}")
            if row.get("counts"):
                test += f"<br><small><strong>Counts:</strong> {_cell(row['counts'])}</small>"
            verdict = f"<strong>{_cell(row['verdict'])}</strong>"
            if row.get("note"):
                verdict += f"<br><small>{_cell(row['note'])}</small>"
            rows.append(f"<tr>{lead}<td>{test}</td><td>{result}</td><td>{verdict}</td></tr>")
    return (f'<table class="table lds-claims-ledger"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def summary_html(counts: dict) -> str:
    """One line: how many claims were checked, and how many of them got each verdict."""
    parts = [f"{n} {html.escape(v)}" for v, n in counts["per_verdict"].items() if n]
    return (f"<p><strong>{counts['checked']} of {len(CLAIMS)} claims checked in this run</strong>: "
            + "; ".join(parts) + ".</p>")


def show_ledger(executed_dir: str | Path = ".", link_suffix: str = ".html") -> dict:
    """Collect the findings, display the ledger, record its counts; returns the findings.

    Records ``claims_checked`` (how many of the 24 claims some chapter checked),
    ``claims_checked_numbers`` and ``claims_per_verdict``.
    """
    from IPython.display import HTML, display

    from .record import record

    found = collect(executed_dir)
    counts = summary(found)
    display(HTML(summary_html(counts) + '<div style="overflow-x:auto">' + ledger_html(found, link_suffix)
                 + "</div>"))
    record("claims_checked", counts["checked"])
    record("claims_checked_numbers", counts["numbers"])
    record("claims_per_verdict", counts["per_verdict"])
    return found
