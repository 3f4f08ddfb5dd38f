"""The paper's technical claims that the book checks (the claims ledger, notebooks/10_claims).

Each entry: number -> (the paper's section, a short verbatim quotation of the claim, the chapter
that checks it). The quotations are from Salvaggio, "The Market in the Model" (arXiv:2606.19151),
each at most a sentence (:data:`MAX_QUOTE_WORDS` words at most), and never cut where the cut would change
what the sentence claims or who claims it: claim 12 keeps its last clause (noise "did not pass CLIP to enter
the training data"), claim 24 its subject (the cross-attention hierarchy), interpretive claim 25 its
attribution (Impett and Offert). Values and verdicts are not here: each chapter records
them with ``lds.claim`` when it runs, and :func:`collect` gathers them from the executed notebooks
for the ledger (:func:`ledger_html`).

:data:`INTERPRETIVE` lists the paper's interpretive claims (the model as a market, CLIP's "position,
not a price", ...): their verdict is always "interpretive", and :func:`show_interpretive` sets beside
each the numbers the chapters recorded that bear on it, and what evidence would (chapter 0 sets out
their vocabulary).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

MAX_QUOTE_WORDS = 45  # one sentence of the paper; claim 12's, quoted whole, is its longest (41)

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
         "texture resembling anything in the training data, and did not pass CLIP to enter the training data "
         "because CLIP is structurally looking for its opposite.",
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
         "The cross-attention hierarchy contributes to what Steyerl calls the mean image, which replaces "
         "“likenesses with likelinesses,” converging on the statistically dominant rather than the particular",
         "08_guidance"),
}

# The claims whose sentence joins several statements, with the statements a chapter must test apart: a compound
# claim measured on lds-mini (not "not testable", not "not computational") is recorded in parts, at least this many
# (:func:`compound_violations` lists those that are not; the ledger shows them and the tests fail on them), so that
# one verdict never stands for a sentence whose halves could come apart. (On a model without lds-mini's training
# records, SD 1.5, a chapter may have fewer parts to measure: the rule is checked on lds-mini's book.) Claim 13's
# second half ("to the human eye, it depicts nothing") is left to the eye, and claim 19's mechanism and its effect
# are tested as one condition, so neither is listed.
COMPOUND = {
    3: ("a score for any image and caption", "the rest of the pipeline uses it"),
    4: ("captions outside English-language conventions filtered out", "images without captions filtered out"),
    5: ("two dogs near each other", "a dog and a bicycle far apart"),
    7: ("frequent words have dedicated tokens", "split words lose their specificity"),
    9: ("something is always lost", "the decoder gives a plausible-seeming substitute"),
    12: ("no structure for perceptual loss", "no texture resembling the training data",
         "would not pass CLIP, which looks for its opposite"),
    14: ("compressed until only outlines remain", "details restored through the skip connections"),
    15: ("no presence at the start", "converging quickly on rough outlines"),
    16: ("the steps change the image", "the scope of detail follows the number of steps"),
    17: ("the modifier loses attention with the racialised term", "more than to any added word"),
    21: ("the prompt overemphasised", "other context eliminated to the point of collapse"),
    22: ("each step's distance from the unconditional prediction", "the image's distance from the prompt's centre"),
    23: ("not the training distribution", "the most represented composite"),
    24: ("toward the mean image", "converging on the statistically dominant"),
}


def compound_violations(found: dict) -> list[str]:
    """The compound claims (:data:`COMPOUND`) in ``found`` (:func:`collect`) that were given a measured verdict with
    fewer parts than the statements their sentence joins."""
    out = []
    for number, statements in COMPOUND.items():
        for row in found.get(number, []):
            if (row["verdict"] not in ("not testable on lds-mini", "not computational")
                    and len(row.get("parts") or []) < len(statements)):
                out.append(f"claim {number} ({row.get('chapter', '?')}): {row['verdict']!r} on "
                           f"{len(row.get('parts') or [])} part(s), its sentence joins {len(statements)}: "
                           + "; ".join(statements))
    return out


# ----------------------------------------------------------------------------------------------
# The paper's interpretive claims (chapter 0 sets out their vocabulary)
# ----------------------------------------------------------------------------------------------

INTERPRETIVE_VERDICT = "interpretive"

# number -> (section, verbatim quotation of at most 25 words, the evidence in the book that bears on it
# as (chapter, record, what the record shows), and the evidence that would bear on it). The numbers
# continue the technical claims' so that a claim keeps one number in the book. No chapter records a
# verdict for these: their verdict is always "interpretive", and the ledger shows beside each the
# chapters' recorded numbers that bear on it.
INTERPRETIVE = {
    25: ("Introduction",
         "For Impett and Offert, every model takes the form of a market",
         [("00_framework", "clip_scores", "one image's CLIP score under each of its 14 names"),
          ("02_clip_filtered_web", "matched_vs_mismatched_auc", "how well one number sorts every pair of the web"),
          ("08_guidance", "distance_trend_by_prompt", "guidance as one dial over the distance from the unconditional image: "
                                                      "its rank correlation with the scale above s = 1, for each trained prompt")],
         "The paper takes this reading from Impett and Offert and builds on it. "
         "Measurements show that everything entering the model is put on common scales. Whether those scales "
         "make a market would need an account of exchange: what is traded for what, by whom, at what rate; "
         "the vector space has distances but no parties and no prices."),
    26: ("Introduction",
         "I call this intermediate stage a neural economy: a contained symbolic system in which neural exchange "
         "value circulates.",
         [("00_framework", "kept_languages", "which of one image's names carry it through the filter"),
          ("00_framework", "neighbours", "the image's position: its nearest neighbours"),
          ("01_ensemble", "n_networks", "the separately trained networks the pipeline is made of")],
         "That the system is contained can be checked (it runs offline on its own weights); that what circulates "
         "in it is value would need evidence that its positions are exchanged, beyond being compared."),
    27: ("CLIP",
         "Instead of setting a price, it sets a position.",
         [("02_clip_filtered_web", "near_pair", "the two dog emoji: their cosine and its percentile among all pairs"),
          ("02_clip_filtered_web", "far_pair", "the dog and the bicycle"),
          ("00_framework", "neighbour_cosines", "one image's position as its nearest cosines")],
         "The book measures positions directly. That a position functions like a price would need evidence that "
         "positions decide what is kept, made or paid for; the filter's threshold (chapter 2) is the closest "
         "thing in the book, a position turned into a decision."),
    28: ("CLIP",
         "The representable world looked like whatever had the most inbound links, described by whatever caption "
         "the commercial web placed alongside it.",
         [("02_clip_filtered_web", "zipf_sweep", "how many emoji survive the filter as the popularity skew grows"),
          ("02_clip_filtered_web", "drawn_well", "whether lds-mini draws the more linked emoji better")],
         "The synthetic web shows the mechanism with a ranking that knows nothing of content. For LAION itself, "
         "the evidence would be Common Crawl's harmonic-centrality ranks set against what LAION kept, which the "
         "book does not download."),
    29: ("CLIP",
         "CLIP replaced that judgment without hiring new workers — instead embedding the labor of earlier human "
         "annotators into its weights",
         [("02_clip_filtered_web", "mean_score", "what a CLIP trained on captions scores matched and mismatched pairs")],
         "A labour claim, not a computation: the evidence is historical (ImageNet's 49,000 workers, the alt text "
         "CLIP learned from) and is cited, not measured; the book's datasheet names the labour in its own corpus."),
    30: ("Tokenization and CLIP",
         "Steyerl notes that prompt-based generators train users to a vocabulary as much as they train models",
         [("05_tokenization", "tokens_per_name_ratio_max_over_en", "how much more a name costs in the costliest language"),
          ("05_tokenization", "never_seen_token_ids", "vocabulary entries lds-mini's training never used"),
          ("00_framework", "token_cost", "one image's names, token by token, in 14 languages")],
         "The model's side is measurable: which words it has seen, what they cost, what they change. That users "
         "learn to prompt in its vocabulary is a claim about people, to be tested by studying prompts and how "
         "they change over time, which no run of the model can supply."),
    31: ("Classifier-Free Guidance",
         "What the user experiences as a control over fidelity is a control over commensurability",
         [("08_guidance", "guidance_measures", "distance from the unconditional image, agreement and saturation per scale"),
          ("00_framework", "guidance_clip_agreement", "one image redrawn across guidance scales"),
          ("08_guidance", "diversity_fall", "how much less the seeds' images differ at the scale where they are most "
                                            "alike than at guidance 1 (for the reading: more alike one another)"),
          ("08_guidance", "mean_image_to_corpus_mean", "per prompt and scale, the distance of the mean generated image "
                                                       "from the corpus's mean image (for the reading if it shrinks "
                                                       "as the scale rises)")],
         "Chapter 8 measures what the dial sets (a distance from the unconditional prediction). Calling that "
         "distance commensurability is the paper's reading; evidence for it would be that higher guidance "
         "makes images more alike one another and more like the corpus's typical image. The book records both "
         "halves, and they need not agree: read the last two rows together (chapter 8 discusses them), since "
         "images can grow alike one another while their mean moves away from the corpus's."),
    32: ("U-Net (Encoding)",
         "it is a visual skin that earns upvotes on Reddit, the composition that passes aesthetic scoring",
         [("02_clip_filtered_web", "aesthetic_kept_by_tone", "a stated taste's kept share by skin tone (simulation)"),
          ("02_clip_filtered_web", "aesthetic_kept_by_kind", "the same by kind")],
         "The book's aesthetic stage is a labelled simulation with a stated taste. What LAION-Aesthetics kept and "
         "removed could only be measured on LAION's own scores, which the book does not download."),
    33: ("Conclusion",
         "The market within the model dehumanizes through the abstract compression of the social sphere.",
         [("03_autoencoder", "compression_ratio", "how many values the autoencoder keeps of an image's"),
          ("00_framework", "names", "the part of an image's social life that the corpus records: its names")],
         "Compression is measured; dehumanisation is an ethical judgement about it, argued from the paper's "
         "sources (Pasquinelli, Terranova, Sohn-Rethel), not computed."),
    34: ("Conclusion",
         "data’s value shifts from scarcity to substitutability",
         [("02_clip_filtered_web", "kept_share", "the share of the web each threshold keeps"),
          ("07_denoising", "seed_diversity", "how different the images of different seeds are")],
         "Substitutability could be approached by asking how much a model changes when one image is removed "
         "from training; the book does not retrain for that, and the question of value remains the paper's."),
    35: ("Abstract",
         "any critique fixated exclusively on copyright and commodity defenses risks reaffirming the very "
         "fetishism the model produces",
         [],
         "A claim about critique and politics. The book offers no measurement; it shows what copyright does not "
         "reach (the mechanisms of chapters 2 to 8) and leaves the argument to the reading."),
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
    from lds.book.record import CLAIM_PREFIX, read_records

    found = {n: [] for n in CLAIMS}
    for notebook in sorted(Path(executed_dir).glob(CHAPTER_GLOB)):
        records = read_records(notebook)
        title = None
        for name, row in records.items():
            if not name.startswith(CLAIM_PREFIX):
                continue
            number = int(name[len(CLAIM_PREFIX):])
            if number not in CLAIMS:
                raise ValueError(f"{notebook.name} records claim {number}, which is not in lds.book.claims.CLAIMS "
                                 f"(numbers 1-{max(CLAIMS)}).")
            title = title or _title(notebook)
            found[number].append({**row, "number": number, "chapter": notebook.stem, "title": title})
    return found


# The qualifier lds.book.record.margin_verdict writes when a value clears its threshold within the stated margin
HAIR = re.compile(r"\bby a hair: .+ within the stated margin of\b")


def by_a_hair(row: dict) -> bool:
    """Whether a finding is "holds with a qualifier" only because it cleared its threshold by a hair (the note
    carries :func:`lds.book.record.margin_verdict`'s qualifier), not because a convention or scale was stated."""
    return row.get("verdict") == "holds with a qualifier" and bool(HAIR.search(row.get("note") or ""))


def summary(found: dict) -> dict:
    """Counts for the ledger: claims checked, and claims per verdict (a claim's first finding); ``by_a_hair``,
    the numbers of the claims among "holds with a qualifier" that held by a hair (:func:`by_a_hair`)."""
    from lds.book.record import VERDICTS

    checked = sorted(n for n, rows in found.items() if rows)
    per_verdict = {v: 0 for v in VERDICTS}
    for n in checked:
        per_verdict[found[n][0]["verdict"]] += 1
    per_verdict[NOT_CHECKED] = len(found) - len(checked)
    hair = [n for n in checked if by_a_hair(found[n][0])]
    return {"checked": len(checked), "numbers": checked, "per_verdict": per_verdict, "by_a_hair": hair}


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
            verdict = f"<strong>{_cell(row['verdict'])}</strong>" + (" (by a hair)" if by_a_hair(row) else "")
            for p in row.get("parts") or []:
                mark = ("✓ holds by construction (checks the code, not the model)" if p["holds"] and p.get("by_construction")
                        else "✓ holds" if p["holds"] else "✗ does not hold")
                verdict += (f"<br><small>{mark}: {_cell(p['part'])} "
                            f"({_cell(p['evidence'])})</small>")
            if row.get("note"):
                verdict += f"<br><small>{_cell(row['note'])}</small>"
            rows.append(f"<tr>{lead}<td>{test}</td><td>{result}</td><td>{verdict}</td></tr>")
    return (f'<table class="table lds-claims-ledger"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def summary_html(counts: dict) -> str:
    """One line: how many claims were checked, and how many of them got each verdict."""
    always = ("holds", "holds in part", "holds with a qualifier", "does not hold")  # shown even when 0
    hair = counts.get("by_a_hair") or []
    parts = [f"{n} {html.escape(v)}" + (f" ({len(hair)} of them by a hair: claim{'s' if len(hair) > 1 else ''} "
                                        f"{', '.join(map(str, hair))})" if v == "holds with a qualifier" and hair else "")
             for v, n in counts["per_verdict"].items() if n or v in always]
    return (f"<p><strong>{counts['checked']} of {len(CLAIMS)} claims checked in this run</strong>: "
            + "; ".join(parts) + ".</p>")


def show_ledger(executed_dir: str | Path = ".", link_suffix: str = ".html") -> dict:
    """Collect the findings, display the ledger, record its counts; returns the findings.

    Records ``claims_checked`` (how many of the 24 claims some chapter checked),
    ``claims_checked_numbers``, ``claims_per_verdict`` and ``claims_by_a_hair``.
    """
    from IPython.display import HTML, display

    from lds.book.record import record

    found = collect(executed_dir)
    counts = summary(found)
    display(HTML(summary_html(counts) + '<div style="overflow-x:auto">' + ledger_html(found, link_suffix)
                 + "</div>"))
    record("claims_checked", counts["checked"])
    record("claims_checked_numbers", counts["numbers"])
    record("claims_per_verdict", counts["per_verdict"])
    record("claims_by_a_hair", counts["by_a_hair"])
    return found


def _brief(value, items: int = 4) -> str:
    """A recorded value, short enough for a table cell."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        parts = [f"{k}: {_brief(v, 2)}" for k, v in list(value.items())[:items]]
        return "{" + ", ".join(parts) + (", …" if len(value) > items else "") + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_brief(v, 2) for v in value[:items]) + (", …" if len(value) > items else "") + "]"
    return str(value)


def interpretive_evidence(executed_dir: str | Path) -> dict:
    """For each interpretive claim, its evidence rows with the value each chapter recorded in this run.

    ``{number: [{"chapter", "record", "shows", "value" (None: chapter not executed or record absent)}]}``.
    """
    from lds.book.record import read_records

    cache: dict = {}
    out = {}
    for number, (_, _, evidence, _) in INTERPRETIVE.items():
        rows = []
        for chapter, name, shows in evidence:
            if chapter not in cache:
                path = Path(executed_dir) / f"{chapter}.ipynb"
                cache[chapter] = read_records(path) if path.is_file() else None
            records = cache[chapter]
            rows.append({"chapter": chapter, "record": name, "shows": shows,
                         "value": None if records is None else records.get(name)})
        out[number] = rows
    return out


def interpretive_html(evidence: dict, link_suffix: str = ".html") -> str:
    """The interpretive claims as one HTML table: the paper's words, the evidence, what would bear on it."""
    head = ('<th style="width:3em">#</th><th style="width:30%">The paper says</th>'
            "<th>Evidence in the book (this run)</th><th style=\"width:26%\">What evidence would bear on it</th>")
    rows = []
    for number, (section, quote, _, would) in sorted(INTERPRETIVE.items()):
        items = []
        for row in evidence.get(number, []):
            link = f'<a href="{html.escape(row["chapter"] + link_suffix)}">{_cell(row["chapter"])}</a>'
            value = ("<em>not recorded in this run</em>" if row["value"] is None
                     else f"<code>{_cell(_brief(row['value']))}</code>")
            items.append(f"{_cell(row['shows'])}: {value} <small>({link}, <code>{_cell(row['record'])}</code>)</small>")
        found = "<br>".join(items) or "<em>no measurement in the book bears on it</em>"
        rows.append(f"<tr><td>{number}</td><td>“{_cell(quote)}”<br><small>{_cell(section)}</small><br>"
                    f"<strong>{INTERPRETIVE_VERDICT}</strong></td><td>{found}</td><td><small>{_cell(would)}</small></td></tr>")
    return (f'<table class="table lds-claims-interpretive"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def show_interpretive(executed_dir: str | Path = ".", link_suffix: str = ".html") -> dict:
    """Display the interpretive claims with this run's evidence; records ``interpretive_claims`` and
    ``interpretive_evidence_found`` (how many evidence rows had a recorded value)."""
    from IPython.display import HTML, display

    from lds.book.record import record

    evidence = interpretive_evidence(executed_dir)
    display(HTML('<div style="overflow-x:auto">' + interpretive_html(evidence, link_suffix) + "</div>"))
    record("interpretive_claims", sorted(INTERPRETIVE))
    record("interpretive_evidence_found",
           sum(row["value"] is not None for rows in evidence.values() for row in rows))
    return evidence
