"""The corpus: emoji images and the names people gave them, in 14 languages.

Chapter 2 (CLIP and the filtered web) and the lds-mini model card explain it.

Images are the colour glyphs of Noto Color Emoji (SIL Open Font License 1.1) rendered with
Pillow; captions are the CLDR short names shipped by the PyPI ``emoji`` package (BSD). The
rendered corpus ships with the package (``lds/data/corpus32.npz`` + ``corpus32.json``) so a
reader needs only pip; :func:`build_corpus` rebuilds it identically where the font is installed
(``python -m lds.data.corpus --out lds/data``).

This module also holds the *synthetic web* (:class:`WebConfig`, :func:`sample_web`): a sampler
that pairs images with captions under a documented language mix, popularity skew and noise,
the book's stand-in for Common Crawl's link-weighted crawl.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent
FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# The bitmap font only accepts this size (Pillow raises "invalid pixel size" otherwise).
FONT_SIZE = 109

# The 14 languages in which the emoji package ships CLDR names (English first).
LANGUAGES = ("en", "es", "ja", "ko", "pt", "it", "fr", "de", "fa", "id", "zh", "ru", "tr", "ar")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "ja": "Japanese", "ko": "Korean", "pt": "Portuguese",
                  "it": "Italian", "fr": "French", "de": "German", "fa": "Persian", "id": "Indonesian",
                  "zh": "Chinese", "ru": "Russian", "tr": "Turkish", "ar": "Arabic"}

SKIN_TONES = {
    "\U0001F3FB": "light",
    "\U0001F3FC": "medium-light",
    "\U0001F3FD": "medium",
    "\U0001F3FE": "medium-dark",
    "\U0001F3FF": "dark",
}
TONE_NAMES = ("none",) + tuple(SKIN_TONES.values())

# Kinds used by the filter report and the chapters. The classification is rule-based (code
# point ranges and English-name keywords) because the emoji package ships no Unicode groups;
# chapter 2 states its limits.
KINDS = ("face", "person", "hand", "animal", "food", "flag", "object", "symbol")

_HAND_WORDS = ("hand", "hands", "palms", "thumbs", "finger", "fist", "palm", "clapping", "handshake", "waving",
               "victory", "call_me", "love-you", "crossed_fingers", "pinch", "writing_hand",
               "ok_hand", "sign_of_the_horns", "folded_hands", "index_pointing", "backhand",
               "vulcan", "raised_back", "nail_polish", "selfie", "flexed", "leg", "foot", "ear",
               "nose")
_PERSON_WORDS = ("person", "man", "woman", "men", "women", "boy", "girl", "child", "baby",
                 "people", "family", "couple", "kiss", "guard", "detective", "worker", "mage",
                 "fairy", "vampire", "merperson", "merman", "mermaid", "elf", "genie", "zombie",
                 "prince", "princess", "santa", "claus", "superhero", "supervillain", "ninja",
                 "technologist", "scientist", "astronaut", "pilot", "firefighter", "cook",
                 "mechanic", "farmer", "teacher", "student", "judge", "artist", "singer",
                 "health_worker", "officer", "construction", "bride", "groom", "pregnant",
                 "breast-feeding", "feeding", "angel", "skier", "snowboarder", "golfer",
                 "surfer", "rowing", "swimming", "bouncing", "lifting", "biking", "cartwheel",
                 "wrestling", "water_polo", "handball", "juggling", "lotus", "bath", "bed",
                 "horse_racing", "climbing", "fencing", "walking", "running", "standing",
                 "kneeling", "dancing", "levitating", "suit", "frowning", "pouting",
                 "gesturing", "tipping", "raising", "bowing", "facepalming", "shrugging",
                 "deaf", "troll", "older", "adult", "speaking_head", "bust", "footprints",
                 "royalty", "tuxedo", "veil", "turban", "cap", "headscarf", "beard", "blond",
                 "mx_claus", "hairy", "bald")
_ANIMAL_WORDS = ("cat", "dog", "monkey", "gorilla", "orangutan", "wolf", "fox", "raccoon",
                 "lion", "tiger", "leopard", "horse", "unicorn", "zebra", "deer", "bison", "cow",
                 "ox", "buffalo", "pig", "boar", "ram", "ewe", "goat", "camel", "llama",
                 "giraffe", "elephant", "mammoth", "rhinoceros", "hippopotamus", "mouse", "rat",
                 "hamster", "rabbit", "chipmunk", "beaver", "hedgehog", "bat", "bear", "koala",
                 "panda", "sloth", "otter", "skunk", "kangaroo", "badger", "paw", "turkey",
                 "chicken", "rooster", "chick", "bird", "penguin", "dove", "eagle", "duck",
                 "swan", "owl", "dodo", "feather", "flamingo", "peacock", "parrot", "frog",
                 "crocodile", "turtle", "lizard", "snake", "dragon", "sauropod", "t-rex",
                 "whale", "dolphin", "seal", "fish", "blowfish", "shark", "octopus", "shell",
                 "coral", "snail", "butterfly", "bug", "ant", "honeybee", "beetle", "cricket",
                 "cockroach", "spider", "scorpion", "mosquito", "fly", "worm", "microbe",
                 "jellyfish", "moose", "donkey", "goose", "crab", "lobster", "shrimp", "squid",
                 "oyster", "poodle", "phoenix", "wing", "service_dog", "guide_dog")
_FOOD_WORDS = ("grapes", "melon", "watermelon", "tangerine", "lemon", "lime", "banana",
               "pineapple", "mango", "apple", "pear", "peach", "cherries", "strawberry",
               "blueberries", "kiwi", "tomato", "olive", "coconut", "avocado", "eggplant",
               "potato", "carrot", "corn", "pepper", "cucumber", "leafy", "broccoli", "garlic",
               "onion", "mushroom", "peanuts", "beans", "chestnut", "ginger", "pea_pod",
               "bread", "croissant", "baguette", "flatbread", "pretzel", "bagel", "pancakes",
               "waffle", "cheese", "meat", "poultry", "bacon", "hamburger", "fries", "pizza",
               "hot_dog", "sandwich", "taco", "burrito", "tamale", "stuffed", "falafel", "egg",
               "cooking", "pan_of_food", "pot_of_food", "fondue", "bowl_with_spoon", "salad",
               "popcorn", "butter", "salt", "canned", "bento", "cracker", "rice", "curry",
               "ramen", "spaghetti", "sweet_potato", "oden", "sushi", "tempura", "fish_cake",
               "moon_cake", "dango", "dumpling", "fortune_cookie", "takeout", "ice_cream",
               "shaved_ice", "doughnut", "cookie", "cake", "shortcake", "cupcake", "pie",
               "chocolate", "candy", "lollipop", "custard", "honey", "milk", "coffee", "tea",
               "sake", "champagne", "wine", "cocktail", "tropical_drink", "beer", "tumbler",
               "cup_with_straw", "bubble_tea", "beverage", "mate", "ice", "chopsticks",
               "fork_and_knife", "spoon", "amphora", "jar", "root_vegetable", "teapot", "drink")
_SYMBOL_WORDS = ("sign", "symbol", "button", "arrow", "mark", "heart", "square", "circle",
                 "triangle", "diamond", "star_of", "keycap", "zodiac", "aries", "taurus",
                 "gemini", "cancer", "leo", "virgo", "libra", "scorpio", "sagittarius",
                 "capricorn", "aquarius", "pisces", "ophiuchus", "_ideograph", "infinity",
                 "recycling", "fleur", "trident", "beginner", "copyright", "registered",
                 "trade_mark", "exclamation", "question", "wavy_dash", "currency", "multiply",
                 "plus", "minus", "divide", "equals", "check", "cross_mark", "loop", "part_alternation",
                 "eight", "sparkle", "atom", "om", "yin_yang", "wheel_of_dharma", "menorah",
                 "dotted", "peace", "radioactive", "biohazard", "no_", "prohibited",
                 "children_crossing", "litter", "potable", "restroom", "toilet", "baby_symbol",
                 "water_closet", "passport", "customs", "baggage", "left_luggage", "warning",
                 "repeat", "shuffle", "play", "pause", "stop", "record", "eject", "fast",
                 "cinema", "dim", "bright", "antenna", "vibration", "mobile_phone_off",
                 "female", "male", "transgender", "medical", "information", "atm", "id_button",
                 "hundred", "input", "new", "free", "cool", "ok_button", "sos", "up!", "vs",
                 "japanese", "a_button", "b_button", "ab_button", "o_button", "p_button",
                 "high_voltage", "anger", "collision", "dizzy", "speech", "thought",
                 "zzz", "hole", "sweat_droplets", "dashing")



def _clean_name(name: str) -> str:
    """``':thumbs_up_medium_skin_tone:'`` -> ``'thumbs up medium skin tone'``."""
    return name.strip(":").replace("_", " ").strip()


def _tone(chars: str) -> str:
    tones = [SKIN_TONES[c] for c in chars if c in SKIN_TONES]
    if not tones:
        return "none"
    # Sequences with two people can carry two tones; "mixed" if they differ.
    return tones[0] if len(set(tones)) == 1 else "mixed"


def classify(chars: str, en_name: str) -> str:
    """Rule-based kind of an emoji (one of :data:`KINDS`). Limits are stated in chapter 2."""
    name = en_name.strip(":").lower()
    cps = [ord(c) for c in chars]
    if any(0x1F1E6 <= cp <= 0x1F1FF for cp in cps) or 0xE0067 in cps or name.startswith("flag") \
            or name.endswith("_flag") or name in ("chequered_flag", "triangular_flag",
                                                  "crossed_flags", "white_flag", "black_flag"):
        return "flag"
    words = name.split("_")
    has = lambda vocab: any((w in words) or (("_" in w or "-" in w) and w in name) for w in vocab)  # noqa: E731
    if has(_HAND_WORDS):
        return "hand"
    first = cps[0]
    if "face" in words and not has(_ANIMAL_WORDS) and "clock" not in name:
        return "face"
    if has(_PERSON_WORDS) or any(c in SKIN_TONES for c in chars):
        return "person"
    if has(_ANIMAL_WORDS):
        return "animal"
    if has(_FOOD_WORDS):
        return "food"
    if has(_SYMBOL_WORDS) or unicodedata.category(chars[0]) == "So" and first < 0x2B00:
        return "symbol"
    return "object"


@dataclasses.dataclass
class Corpus:
    """The rendered corpus: ``images`` (N, H, W, 4) uint8 RGBA and one record per image."""

    images: np.ndarray
    records: list[dict]  # keys: char, names {lang: caption}, kind, tone, base
    # rgb() per background, computed once (0.15 s each time for the whole corpus; chapters ask often)
    _rgb: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.records)

    def rgb(self, background: int = 255) -> np.ndarray:
        """Images composited on a plain background: (N, H, W, 3) float32 in [0, 1]. Computed once per
        background and shared between callers: copy it before changing it in place."""
        if background not in self._rgb:
            rgba = self.images.astype(np.float32) / 255.0
            alpha = rgba[..., 3:4]
            rgb = rgba[..., :3] * alpha + (background / 255.0) * (1 - alpha)
            self._rgb[background] = rgb
        return self._rgb[background]

    def names(self, lang: str = "en") -> list[str]:
        return [r["names"][lang] for r in self.records]

    @property
    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.records]

    @property
    def tones(self) -> list[str]:
        return [r["tone"] for r in self.records]

    @property
    def families(self) -> np.ndarray:
        """Each image's *shape family* (an emoji and its skin-tone variants, which share one drawing), as
        an index 0..F-1 in sorted order of the family's base character."""
        return np.unique([r["base"] for r in self.records], return_inverse=True)[1]

    def index(self, char: str) -> int:
        for i, r in enumerate(self.records):
            if r["char"] == char:
                return i
        raise KeyError(f"{char!r} is not in the corpus")

    def find(self, name: str, lang: str = "en") -> int:
        """Index of the emoji whose ``lang`` name is ``name`` (exact, case-insensitive)."""
        name = name.strip().lower()
        for i, r in enumerate(self.records):
            if r["names"][lang].lower() == name:
                return i
        close = [r["names"][lang] for r in self.records if name and name in r["names"][lang].lower()][:5]
        raise KeyError(f"no emoji named {name!r} in language {lang!r}; names are CLDR short names such as "
                       f"'dog face' (corpus.names({lang!r}) lists them all)"
                       + (f"; names containing it: {close}" if close else ""))


def _load_names() -> dict:
    import emoji

    for lang in LANGUAGES[1:]:
        emoji.config.load_language(lang)
    return emoji.EMOJI_DATA


def build_corpus(size: int = 32, font_path: Path = FONT_PATH, progress: bool = True) -> Corpus:
    """Render every fully-qualified emoji that the font draws as one glyph, at ``size`` pixels.

    Deterministic for a given font file, Pillow and emoji version (recorded in the provenance).
    """
    from PIL import Image, ImageDraw, ImageFont
    from tqdm.auto import tqdm

    import emoji

    if not Path(font_path).exists():
        raise FileNotFoundError(
            f"{font_path} not found. The corpus ships with lds (lds/data/corpus32.npz); to rebuild it, "
            "install the Noto Color Emoji font (Debian/Ubuntu: apt-get install fonts-noto-color-emoji)."
        )
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    data = _load_names()
    items = sorted(
        (c, d) for c, d in data.items()
        if d["status"] == emoji.STATUS["fully_qualified"] and all(lang in d for lang in LANGUAGES)
    )
    single_width = font.getbbox("\U0001F600")[2]
    images, records = [], []
    for char, d in tqdm(items, desc="rendering emoji", disable=not progress):
        left, top, right, bottom = font.getbbox(char)
        if right - left > 1.2 * single_width or right <= left:
            continue  # the font draws this sequence as several glyphs (or none)
        canvas = Image.new("RGBA", (right, bottom), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
        glyph = canvas.crop(canvas.getbbox() or (0, 0, right, bottom))
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        small = square.resize((size, size), Image.Resampling.LANCZOS)
        base = "".join(c for c in char if c not in SKIN_TONES)
        records.append({
            "char": char,
            "codepoints": " ".join(f"U+{ord(c):04X}" for c in char),
            "names": {lang: _clean_name(d[lang]) for lang in LANGUAGES},
            "kind": classify(char, d["en"]),
            "tone": _tone(char),
            "base": base,
            "emoji_version": d.get("E"),
        })
        images.append(np.asarray(small, dtype=np.uint8))
    return Corpus(np.stack(images), records)


def provenance(corpus: Corpus, font_path: Path = FONT_PATH) -> dict:
    import PIL

    import emoji

    return {
        "images": "Noto Color Emoji, rendered with Pillow at size 109, centred and resized (LANCZOS)",
        "image_licence": "SIL Open Font License 1.1 (Google LLC, Noto Emoji project)",
        "captions": "CLDR short names from the PyPI 'emoji' package",
        "caption_licence": "BSD-3-Clause ('emoji' package); CLDR data under the Unicode License v3",
        "font_sha256": hashlib.sha256(Path(font_path).read_bytes()).hexdigest() if Path(font_path).exists() else None,
        "pillow": PIL.__version__,
        "emoji": emoji.__version__,
        "count": len(corpus),
        "images_sha256": hashlib.sha256(corpus.images.tobytes()).hexdigest(),
        "rebuild": "python -m lds.data.corpus --out lds/data",
    }


def save_corpus(corpus: Corpus, out: Path, size: int = 32) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"corpus{size}.npz", images=corpus.images)
    meta = {"provenance": provenance(corpus), "records": corpus.records}
    (out / f"corpus{size}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=0))


@lru_cache(maxsize=2)
def load_corpus(size: int = 32) -> Corpus:
    """The corpus shipped with lds (no font needed)."""
    npz = DATA_DIR / f"corpus{size}.npz"
    if not npz.exists():
        raise FileNotFoundError(f"{npz} is missing; rebuild it with `python -m lds.data.corpus --out {DATA_DIR}`.")
    images = np.load(npz)["images"]
    meta = json.loads((DATA_DIR / f"corpus{size}.json").read_text())
    return Corpus(images, meta["records"])


def corpus_provenance(size: int = 32) -> dict:
    return json.loads((DATA_DIR / f"corpus{size}.json").read_text())["provenance"]


def left_out(corpus: Corpus) -> list[dict]:
    """The emoji the corpus could have held and does not (the datasheet's *what is left out*).

    Candidates are the fully-qualified emoji with CLDR names in all 14 languages, as
    :func:`build_corpus` selects them; what it skipped is what this font draws as several glyphs
    (or none). Needs the same ``emoji`` package version the corpus was built with to be exact.
    """
    import emoji

    data = _load_names()
    have = {r["char"] for r in corpus.records}
    return [{"char": c, "en": _clean_name(d["en"]), "emoji_version": d.get("E"), "tone": _tone(c)}
            for c, d in sorted(data.items())
            if d["status"] == emoji.STATUS["fully_qualified"] and all(lang in d for lang in LANGUAGES)
            and c not in have]


def blank_images(corpus: Corpus) -> list[int]:
    """Indices of corpus images with no visible pixel: emoji newer than the font, drawn as nothing."""
    return [int(i) for i in np.flatnonzero(corpus.images[..., 3].reshape(len(corpus), -1).max(1) == 0)]


# ----------------------------------------------------------------------------------------------
# The synthetic web
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class WebConfig:
    """How the synthetic web pairs images with captions (chapter 2).

    The defaults are choices, not measurements of the real web; each is a dial for the reader.
    """

    pairs: int = 60_000  # how many (image, caption) pairs the crawl yields
    # Share of captions in each language. English dominates as in Common Crawl, where about
    # 45% of pages are English; the other 13 languages share the rest equally.
    english_share: float = 0.45
    # Popularity: emoji are ranked by a seeded shuffle and drawn with Zipf weight rank^-zipf_s,
    # the stand-in for Harmonic Centrality's link-weighted skew (0 = uniform).
    zipf_s: float = 0.6
    # Skin-tone variants are drawn this much less often than their unmarked (yellow) base,
    # mirroring how rarely the modifiers are used compared with the default.
    tone_weight: float = 0.25
    # Alt text is often wrong: this share of pairs gets the caption of another emoji ...
    mismatch_rate: float = 0.15
    # ... and this share gets no caption at all (an empty string).
    uncaptioned_rate: float = 0.05
    seed: int = 0


def popularity_ranks(corpus: Corpus, cfg: WebConfig) -> np.ndarray:
    """Each image's popularity rank in the synthetic web (1 = most linked), shared by its skin tones.

    The ranking is a seeded shuffle of the base emoji: a stand-in for Common Crawl's Harmonic
    Centrality that, unlike the real ranking, is independent of what an emoji shows (chapter 2).
    """
    rng = np.random.default_rng(cfg.seed)
    bases = sorted({r["base"] for r in corpus.records})
    order = rng.permutation(len(bases))
    rank = {b: int(order[i]) + 1 for i, b in enumerate(bases)}
    return np.array([rank[r["base"]] for r in corpus.records])


def popularity(corpus: Corpus, cfg: WebConfig) -> np.ndarray:
    """Sampling weight of each image under the web's popularity skew (sums to 1)."""
    w = popularity_ranks(corpus, cfg).astype(np.float64) ** -cfg.zipf_s
    w *= np.array([1.0 if r["tone"] == "none" else cfg.tone_weight for r in corpus.records])
    return w / w.sum()


def language_weights(cfg: WebConfig) -> np.ndarray:
    rest = (1.0 - cfg.english_share) / (len(LANGUAGES) - 1)
    return np.array([cfg.english_share] + [rest] * (len(LANGUAGES) - 1))


def sample_web(corpus: Corpus, cfg: WebConfig = WebConfig()) -> dict:
    """Draw the synthetic web: arrays ``image`` (index), ``lang``, ``caption``, ``matched``.

    ``matched`` is False where the caption belongs to another image (the noisy alt text that a
    CLIP filter is meant to remove) or is empty.
    """
    rng = np.random.default_rng(cfg.seed + 1)
    n = cfg.pairs
    image = rng.choice(len(corpus), size=n, p=popularity(corpus, cfg))
    lang = rng.choice(len(LANGUAGES), size=n, p=language_weights(cfg))
    source = image.copy()
    mismatch = rng.random(n) < cfg.mismatch_rate
    source[mismatch] = rng.integers(0, len(corpus), size=int(mismatch.sum()))
    uncaptioned = rng.random(n) < cfg.uncaptioned_rate
    captions = [
        "" if uncaptioned[i] else corpus.records[source[i]]["names"][LANGUAGES[lang[i]]]
        for i in range(n)
    ]
    return {
        "image": image,
        "lang": np.array([LANGUAGES[i] for i in lang]),
        "caption": np.array(captions, dtype=object),
        "matched": (source == image) & ~uncaptioned,
        "uncaptioned": uncaptioned,
    }


def _main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Rebuild the emoji corpus from the Noto Color Emoji font.")
    p.add_argument("--out", default=str(DATA_DIR))
    p.add_argument("--size", type=int, default=32)
    args = p.parse_args(argv)
    corpus = build_corpus(args.size)
    save_corpus(corpus, Path(args.out), args.size)
    prov = provenance(corpus)
    print(f"{prov['count']} emoji -> {args.out} (images sha256 {prov['images_sha256'][:12]})")


if __name__ == "__main__":
    _main()
