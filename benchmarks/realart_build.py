"""Build a real-art benchmark set for `heroforge prepare` from Google's Noto emoji artwork.

The synthetic heroes (`heroforge synth`) have exact truth but are drawn by our own code; this set
is drawn by people: Noto emoji (busts, whole figures, animals, objects) composited onto the
backgrounds scraped art comes with, plus a few real photographs for `too_realistic`. It is a
development resource only: nothing in heroforge imports it or needs what it needs.

Set-up, once (all outside the repository; none of it is a dependency of heroforge):

    apt-get update && apt-get install -y librsvg2-bin       # rsvg-convert (2.54.7 measured)
    mkdir -p /work/cache/realart && cd /work/cache/realart
    npm pack @svgmoji/noto@3.2.0                            # -> svgmoji-noto-3.2.0.tgz
    # other families (--family): the packages named in FAMILIES below, e.g.
    npm pack @iconify-json/twemoji@1.2.5 @iconify-json/openmoji@1.2.29 @iconify-json/emojione@1.2.3
    npm pack @iconify-json/fluent-emoji-flat@1.2.6 @iconify-json/streamline-emojis@1.2.4
    npm pack @iconify-json/fxemoji@1.2.2
    python3.11 -m venv venv
    venv/bin/pip install numpy==2.4.6 pillow==13.0.0 scikit-image==0.26.0 matplotlib==3.11.2

Build (about a minute on 2 cores):

    /work/cache/realart/venv/bin/python benchmarks/realart_build.py --out /work/cache/realart

Writes into --out: raw/ (the pictures), masks/ (truth from the rendered alpha, L 0/255),
labels.json (the schema of `heroforge synth`: file, kind, human_like, body, background, format,
size, mask, bbox, head_box, duplicate_of; plus codepoint, group, figure, placement, small,
recolour_of, art) and NOTICE.txt. The same seed, package, rsvg-convert and library versions give
the same bytes.

"art" names the drawing (a hash of its SVG): some families draw several codepoints identically
(Noto v1's "person", "man" and "woman" runners are one picture), and two pictures of the same
art are the same picture once their backgrounds are removed, whatever the codepoints say.
`--annotate` adds the field to a set built before it existed, without drawing anything.

Licences: the Noto emoji artwork is Apache-2.0 (googlefonts/noto-emoji); the @svgmoji/noto
wrapper that packs it into one sprite is MIT. Photographs: grace_hopper.jpg (matplotlib sample
data, US Navy, public domain); scikit-image astronaut and rocket (NASA, public domain), camera,
coffee and chelsea (CC0, see skimage/data/README.txt).

Labelling (by codepoint, after looking at every base emoji in Noto 3.2.0):
- upper: heads and busts. Noto's person/man/woman/child faces are heads without shoulders
  ("figure": "head"); uniformed and costumed people end in a flat shoulder line ("bust").
  Juggling (1F939) is a waist-cut bust in Noto, so it is upper, not full.
- full: whole figures. Superhero 1F9B8, supervillain 1F9B9, fairy 1F9DA and merperson 1F9DC
  are drawn as whole figures in Noto (not busts), so they are full here.
- dropped as doubtful: genie 1F9DE (smoke tail, no legs), pregnant 1F930 (side view cut at the
  hips), deaf person 1F9CF (face cut by the frame), sauna 1F9D6 (square steam background), baby
  1F476 (a bald round head, like a smiley), pairs 1F46F 1F46B 1F93C, people in scenery or on
  vehicles or animals (1F3C4 1F93D 1F6A3 1F3CA 26F7 1F3C2 1F9D7 1F6B4 1F6B5 1F3C7 1F6C0 1F6CC,
  wheelchairs 1F9BC 1F9BD), teacher 1F3EB (gradients reference ids outside its own SVG), and
  ambiguous "not human" subjects: smileys, alien, ghost, clown, ogre, goblin, skull, snowman,
  statue of liberty, moai; boats on waves, confetti and party popper (scenery or scattered bits).
- every emoji variant is used once at most (besides the deliberate near-duplicates).
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import io
import json
import re
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

GENERATOR = "realart_build/2"
PACKAGE = "svgmoji-noto-3.2.0.tgz"
SPRITE = "package/sprites/all.svg"
SVG_NS = "http://www.w3.org/2000/svg"
SKIN_TONES = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}
GENDERS = {"2640", "2642"}
PERSONS = {"1F9D1", "1F468", "1F469"}  # person / man / woman, the bases of the ZWJ professions

UPPER = {
    "1F9D1": "person", "1F468": "man", "1F469": "woman", "1F474": "old man",
    "1F475": "old woman", "1F9D3": "older person", "1F471": "blond person",
    "1F9D4": "bearded person", "1F9D2": "child", "1F466": "boy", "1F467": "girl",
    "1F46E": "police officer", "1F477": "construction worker", "1F482": "guard",
    "1F934": "prince", "1F478": "princess", "1F9D9": "mage", "1F9DB": "vampire", "1F9DD": "elf",
    "1F9DF": "zombie", "1F47C": "baby angel", "1F385": "Santa", "1F936": "Mrs Claus",
    "1F977": "ninja", "1F473": "turban", "1F472": "cap", "1F9D5": "headscarf", "1F470": "veil",
    "1F935": "tuxedo", "1F64B": "raising hand", "1F481": "tipping hand", "1F645": "gesture no",
    "1F646": "gesture ok", "1F647": "bowing", "1F926": "facepalm", "1F937": "shrug",
    "1F575": "detective", "1F486": "massage", "1F487": "haircut", "1F64D": "frowning",
    "1F64E": "pouting", "1F939": "juggling",
}  # fmt: skip
# person/man/woman ZWJ X: busts with a prop or a hair style
PROFESSIONS = {
    "1F33E": "farmer", "1F373": "cook", "1F37C": "feeding baby", "1F384": "Mx Claus",
    "1F393": "student", "1F3A4": "singer", "1F3A8": "artist", "1F3ED": "factory worker",
    "1F4BB": "technologist", "1F4BC": "office worker", "1F527": "mechanic",
    "1F52C": "scientist", "1F680": "astronaut", "1F692": "firefighter", "1F9B0": "red hair",
    "1F9B1": "curly hair", "1F9B2": "bald", "1F9B3": "white hair", "2695": "health worker",
    "2696": "judge", "2708": "pilot",
}  # fmt: skip
FULL = {
    "1F9B8": "superhero", "1F9B9": "supervillain", "1F9DA": "fairy", "1F9DC": "merperson",
    "1F9CD": "standing", "1F9CE": "kneeling", "1F6B6": "walking", "1F3C3": "running",
    "1F483": "woman dancing", "1F57A": "man dancing", "1F938": "cartwheeling",
    "1F3CC": "golfer", "1F93E": "handball", "26F9": "bouncing ball", "1F3CB": "weight lifter",
    "1F93A": "fencer", "1F9D8": "lotus position", "1F574": "levitating",
}  # fmt: skip
FULL_PROFESSIONS = {"1F9AF": "white cane"}
NOT_HUMAN = {
    "robot": {"1F916": "robot"},
    "insect": {
        "1F41C": "ant", "1F41B": "bug", "1F41D": "bee", "1F997": "cricket", "1F577": "spider",
        "1FAB2": "beetle", "1F41E": "lady beetle", "1F98B": "butterfly", "1F982": "scorpion",
        "1F99F": "mosquito", "1FAB0": "fly", "1FAB3": "cockroach", "1FAB1": "worm",
    },
    "animal": {
        "1F415": "dog", "1F436": "dog face", "1F408": "cat", "1F431": "cat face",
        "1F40E": "horse", "1F434": "horse face", "1F412": "monkey", "1F435": "monkey face",
        "1F98D": "gorilla", "1F9A7": "orangutan", "1F43B": "bear", "1F427": "penguin",
        "1F989": "owl", "1F98A": "fox", "1F981": "lion", "1F418": "elephant", "1F42A": "camel",
        "1F992": "giraffe", "1F998": "kangaroo", "1F996": "T-rex", "1F995": "sauropod",
        "1F9A9": "flamingo", "1F99C": "parrot", "1F413": "rooster", "1F986": "duck",
        "1F994": "hedgehog", "1F43F": "chipmunk", "1F407": "rabbit", "1F99D": "raccoon",
        "1F9A5": "sloth", "1F43C": "panda", "1F428": "koala", "1F42F": "tiger face",
        "1F405": "tiger", "1F993": "zebra", "1F98C": "deer", "1F404": "cow", "1F416": "pig",
        "1F410": "goat", "1F411": "sheep", "1F999": "llama", "1F40A": "crocodile",
        "1F422": "turtle", "1F40D": "snake", "1F409": "dragon", "1F433": "whale",
        "1F42C": "dolphin", "1F988": "shark", "1F419": "octopus", "1F980": "crab",
        "1F40C": "snail", "1F400": "rat", "1F401": "mouse", "1F402": "ox",
        "1F403": "water buffalo", "1F406": "leopard", "1F40F": "ram", "1F414": "chicken",
        "1F417": "boar", "1F41A": "shell", "1F41F": "fish", "1F420": "tropical fish",
        "1F421": "blowfish", "1F423": "hatching chick", "1F424": "baby chick", "1F426": "bird",
        "1F429": "poodle", "1F42B": "two-hump camel", "1F43A": "wolf", "1F987": "bat",
        "1F985": "eagle", "1F984": "unicorn", "1F98F": "rhinoceros", "1F99B": "hippopotamus",
        "1F9A1": "badger", "1F9A8": "skunk", "1F9AB": "beaver", "1F9AC": "bison",
        "1F9AD": "seal", "1F9A4": "dodo", "1F9A2": "swan", "1F99A": "peacock",
        "1F99E": "lobster", "1F990": "shrimp", "1F991": "squid", "1F9A6": "otter",
        "1F9AE": "guide dog", "1F9A3": "mammoth", "1F432": "dragon face", "1F438": "frog",
        "1F439": "hamster", "1F42D": "mouse face", "1F430": "rabbit face", "1F42E": "cow face",
        "1F437": "pig face",
    },
    "object": {
        "1F697": "car", "1F695": "taxi", "1F68C": "bus", "1F693": "police car",
        "1F691": "ambulance", "1F692": "fire engine", "1F69C": "tractor", "1F3CE": "racing car",
        "1F3CD": "motorcycle", "1F6B2": "bicycle", "2708": "airplane", "1F681": "helicopter",
        "1F680": "rocket", "1F6F8": "flying saucer", "26F5": "sailboat", "2615": "hot beverage",
        "1F964": "cup with straw", "1F375": "teacup", "1F37A": "beer", "1F377": "wine glass",
        "1F3C6": "trophy", "1F3C5": "medal", "26BD": "soccer ball", "1F3C0": "basketball",
        "1F3C8": "football", "26BE": "baseball", "1F3BE": "tennis", "1F3D0": "volleyball",
        "1F3B1": "pool 8 ball", "1F528": "hammer", "1F527": "wrench", "1FA9B": "screwdriver",
        "1FA9A": "saw", "1F9F0": "toolbox", "1F6E0": "hammer and wrench", "1FA93": "axe",
        "1F3B8": "guitar", "1F3BA": "trumpet", "1F3BB": "violin", "1F941": "drum",
        "1F4F1": "mobile phone", "1F4BB": "laptop", "1F4F7": "camera", "1F52D": "telescope",
        "1F4A1": "light bulb", "1F56F": "candle", "1F9ED": "compass", "23F0": "alarm clock",
        "1F45F": "running shoe", "1F462": "boot", "1F451": "crown", "1F3A9": "top hat",
        "1F392": "backpack", "1F302": "umbrella", "1F3E0": "house", "1F3F0": "castle",
        "1F5FC": "tower", "1F333": "tree", "1F335": "cactus", "1F344": "mushroom",
        "1F337": "tulip", "1F34E": "apple", "1F34C": "banana", "1F355": "pizza",
        "1F354": "hamburger", "1F382": "cake", "1F36D": "lollipop", "1F9F8": "teddy bear",
        "1FA81": "kite", "1FA80": "yo-yo", "1F3AE": "game controller", "1F3B2": "die",
        "1F383": "jack-o-lantern", "1F36A": "cookie", "1F369": "doughnut", "1F366": "ice cream",
        "1F370": "shortcake", "1F34A": "tangerine", "1F349": "watermelon", "1F347": "grapes",
        "1F353": "strawberry", "1F955": "carrot", "1F336": "hot pepper", "1F951": "avocado",
        "1F35E": "bread", "1F9C0": "cheese", "1F32D": "hot dog", "1F32E": "taco",
        "1F37F": "popcorn", "1F36F": "honey pot", "1F9C1": "cupcake", "1F3B7": "saxophone",
        "1FA95": "banjo", "1F3B9": "keyboard", "1F4FB": "radio", "1F4FA": "television",
        "1F5A5": "desktop computer", "1F5A8": "printer", "1F4BE": "floppy disk",
        "1F4BF": "optical disk", "1F50B": "battery", "1F50C": "plug", "1F52B": "water pistol",
        "1F3F9": "bow and arrow", "1F6E1": "shield", "1F5E1": "dagger", "2694": "swords",
        "1FA83": "boomerang", "1F3A8": "palette", "1F9F6": "yarn", "1F455": "t-shirt",
        "1F456": "jeans", "1F457": "dress", "1F45C": "handbag", "1F453": "glasses",
        "1F576": "sunglasses", "1F97D": "goggles", "1F9E2": "billed cap", "26D1": "rescue helmet",
        "1F48D": "ring", "1F48E": "gem", "1F4E6": "package", "1F4EB": "mailbox",
        "1F4DA": "books", "1F4D5": "book", "1F58A": "pen", "270F": "pencil", "1F4CC": "pushpin",
        "1F4CE": "paperclip", "2702": "scissors", "1F511": "key", "1F512": "lock",
        "1F6AA": "door", "1FA91": "chair", "1F6BD": "toilet", "1F9F4": "lotion bottle",
        "1F9F9": "broom", "1F9FA": "basket", "1F9FB": "roll of paper", "1F9FC": "soap",
        "1F9FD": "sponge", "1F9EF": "fire extinguisher", "1F6D2": "shopping cart",
        "26B0": "coffin", "1F3FA": "amphora", "1F52E": "crystal ball", "1F488": "barber pole",
        "2697": "alembic", "1F4E1": "satellite antenna", "1F489": "syringe", "1F48A": "pill",
        "1FA7A": "stethoscope", "1F3EE": "red lantern", "1F38F": "carp streamer",
        "1F380": "ribbon", "1F381": "gift", "1F388": "balloon", "1F3C1": "chequered flag",
        "26F3": "flag in hole", "1F94A": "boxing glove", "1F94B": "martial arts uniform",
        "1F3BD": "running shirt", "1F6F9": "skateboard", "1F6FC": "roller skate", "1F6F7": "sled",
        "26F8": "ice skate", "1F94C": "curling stone", "1F3AF": "bullseye", "1F3B3": "bowling",
        "1F3CF": "cricket game", "1F3D1": "field hockey", "1F3D2": "ice hockey",
        "1F3D3": "ping pong", "1F3F8": "badminton", "1F94D": "lacrosse", "1F94E": "softball",
        "1F94F": "flying disc", "1F6F4": "kick scooter", "1F6F5": "motor scooter",
        "1F682": "locomotive", "1F699": "sport utility vehicle", "1F6FB": "pickup truck",
        "1F69A": "delivery truck", "1F69B": "articulated lorry", "1F6F6": "canoe",
        "1F6E9": "small airplane", "1F6F0": "satellite", "1F6A8": "police car light",
        "1F6A6": "traffic light", "26FD": "fuel pump",
    },
}  # fmt: skip
# Kinds are drawn with fixed odds rather than in proportion to how many emoji each has, so the
# dozen insects are not swamped by objects; the one robot is used once, when its turn comes.
NOT_HUMAN_ODDS = {"robot": 0.05, "insect": 0.25, "animal": 0.35, "object": 0.35}

# Real photographs shipped in pip packages: (name, human_like, pictures)
PHOTOS = [
    ("grace_hopper", True, 5),
    ("astronaut", True, 5),
    ("camera", True, 3),
    ("chelsea", False, 4),
    ("coffee", False, 3),
    ("rocket", False, 3),
]
# distant: a whole figure (or an animal or object) small on a large canvas, its box under 10%
# of the picture; recolour: another variant (skin tone, gender, hair) of a hero already drawn
COUNTS = {
    "upper": 190, "full": 110, "distant": 60, "recolour": 40, "not_human": 130, "small": 16,
    "duplicate": 12,
}  # fmt: skip
DISTANT_ODDS = {"full": 0.6, "not_human": 0.4}
BACKGROUND_ODDS = {
    "transparent": 0.15, "white": 0.18, "plain": 0.16, "gradient": 0.14, "stripes": 0.07,
    "dots": 0.07, "cluttered": 0.23,
}  # fmt: skip
FORMAT_ODDS = {"png": 0.35, "jpeg": 0.45, "webp": 0.20}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "png-rgba": "png"}


@dataclass(frozen=True)
class Emoji:
    id: str  # sprite id, e.g. "1F9B8-1F3FD-200D-2640-FE0F"
    group: str  # the base it is labelled by, e.g. "1F9B8 superhero"
    kind: str  # hero / robot / insect / animal / object (the kinds of `heroforge synth`)
    body: str | None  # upper / full for human-like emoji


def _core(emoji_id: str) -> list[str]:
    """The codepoints that say what is drawn: skin tones, gender signs and FE0F removed."""
    parts = [p for p in emoji_id.split("-") if p not in SKIN_TONES and p != "FE0F"]
    if len(parts) >= 3 and parts[-2] == "200D" and parts[-1] in GENDERS:
        parts = parts[:-2]
    return parts


def classify(emoji_id: str) -> Emoji | None:
    """The label of one sprite id, or None for emoji outside the benchmark."""
    core = _core(emoji_id)
    if len(core) == 1:
        base = core[0]
        if base in UPPER:
            return Emoji(emoji_id, f"{base} {UPPER[base]}", "hero", "upper")
        if base in FULL:
            return Emoji(emoji_id, f"{base} {FULL[base]}", "hero", "full")
        for kind, names in NOT_HUMAN.items():
            if base in names:
                return Emoji(emoji_id, f"{base} {names[base]}", kind, None)
    elif len(core) == 3 and core[0] in PERSONS and core[1] == "200D":
        extra = core[2]
        if extra in PROFESSIONS:
            return Emoji(emoji_id, f"ZWJ-{extra} {PROFESSIONS[extra]}", "hero", "upper")
        if extra in FULL_PROFESSIONS:
            return Emoji(emoji_id, f"ZWJ-{extra} {FULL_PROFESSIONS[extra]}", "hero", "full")
    return None


def load_sprite(package: Path) -> dict[str, str]:
    """id -> standalone SVG text, straight from the npm tarball (no extraction needed).

    Emoji whose gradients point at ids outside their own <svg> are left out: drawn alone they
    would lose those fills.
    """
    with tarfile.open(package) as tar:
        member = tar.extractfile(SPRITE)
        if member is None:
            raise SystemExit(f"{package} has no {SPRITE}")
        root = ET.fromstring(member.read())
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    svgs = {}
    for child in root:
        if child.tag != f"{{{SVG_NS}}}svg":
            continue
        text = ET.tostring(child, encoding="unicode")
        refs = set(re.findall(r"url\(#([^)]+)\)", text)) | set(re.findall(r'href="#([^"]+)"', text))
        if refs <= set(re.findall(r' id="([^"]+)"', text)):
            svgs[child.get("id", "")] = text
    return svgs


# Where a family draws a base otherwise than Noto 3.2.0 (after looking at every base of it)
FAMILY_BODY = {
    "fluent": {"1F9B8": "upper", "1F9B9": "upper"},  # super(villain) as busts
    "twemoji": {"1F9B8": "upper", "1F9B9": "upper", "1F9DA": "upper"},  # ... and the fairy
    # OpenMoji draws the juggler whole (Noto: cut at the waist)
    "openmoji": {"1F9B8": "upper", "1F9B9": "upper", "1F9DA": "upper", "1F939": "full"},
}


def catalogue(svgs: dict[str, str], family: str = "noto") -> dict[str, dict[str, list[Emoji]]]:
    """Labelled emoji by pool (upper / full / robot / insect / animal / object) and group."""
    pools: dict[str, dict[str, list[Emoji]]] = {}
    for emoji_id in sorted(svgs):
        emoji = classify(emoji_id)
        if emoji is None:
            continue
        body = FAMILY_BODY.get(family, {}).get(emoji.group.split()[0])
        if body and emoji.body:
            emoji = Emoji(emoji.id, emoji.group, emoji.kind, body)
        pool = emoji.body or emoji.kind
        pools.setdefault(pool, {}).setdefault(emoji.group, []).append(emoji)
    return pools


def _pick(rng: np.random.Generator, odds: dict[str, float]) -> str:
    names = list(odds)
    p = np.array([odds[n] for n in names])
    return str(rng.choice(names, p=p / p.sum()))


def _choose(rng: np.random.Generator, groups: dict[str, list[Emoji]], used: set[str]) -> Emoji:
    """Group first, then a variant: man/woman/skin-tone variants must not outweigh a base.

    Each variant is drawn at most once: the same artwork on two backgrounds becomes the same
    picture once the background is removed, a duplicate that the labels would not admit.
    """
    names = sorted(g for g, variants in groups.items() if any(e.id not in used for e in variants))
    variants = [e for e in groups[names[int(rng.integers(len(names)))]] if e.id not in used]
    emoji = variants[int(rng.integers(len(variants)))]
    used.add(emoji.id)
    return emoji


def _unused(groups: dict[str, list[Emoji]], used: set[str]) -> bool:
    return any(e.id not in used for variants in groups.values() for e in variants)


def plan(svgs: dict[str, str], seed: int, family: str = "noto") -> list[dict]:
    """One spec per picture, fixed by the seed: what to draw and how to stage it."""
    pools = catalogue(svgs, family)
    roles = [
        role
        for role, n in COUNTS.items()
        if role not in ("duplicate", "recolour")
        for _ in range(n)
    ]
    roles += [f"photo:{name}" for name, _, n in PHOTOS for _ in range(n)]
    np.random.default_rng(seed).shuffle(roles)
    specs: list[dict] = []
    used: set[str] = set()
    for role in roles:
        i = len(specs)  # the index into the labels: a role no emoji is left for is skipped
        rng = np.random.default_rng([seed, i])
        spec: dict = {"index": i, "role": role}
        if role.startswith("photo:"):
            spec["photo"] = role.split(":", 1)[1]
        else:
            pool = role
            if role == "small":  # thumbnails of every kind, for too_small
                pool = str(rng.choice(["upper", "full", "not_human"]))
            elif role == "distant":
                pool = _pick(rng, DISTANT_ODDS)
            if pool == "not_human":
                odds = {k: p for k, p in NOT_HUMAN_ODDS.items() if _unused(pools.get(k, {}), used)}
                if not odds:
                    continue
                pool = _pick(rng, odds)
            if pool == "full" and not _unused(pools.get(pool, {}), used):
                pool = "upper"  # a family with few whole figures (blob) runs out of them
            if not _unused(pools.get(pool, {}), used):
                continue  # an older family with few people (emojione) runs out of busts too
            emoji = _choose(rng, pools[pool], used)
            spec.update(emoji=asdict(emoji), svg=svgs[emoji.id])
        specs.append(spec)
    # Recolours: another unused variant of a hero group drawn earlier (skin tone, gender,
    # hair), staged on its own: a different picture that a duplicate finder must keep.
    for _ in range(COUNTS["recolour"]):
        i = len(specs)
        rng = np.random.default_rng([seed, i])
        heroes = [
            s for s in specs
            if s["role"] in ("upper", "full", "distant") and s["emoji"]["kind"] == "hero"
            and _unused({"g": pools[s["emoji"]["body"]][s["emoji"]["group"]]}, used)
        ]  # fmt: skip
        if not heroes:
            break
        first = heroes[int(rng.integers(len(heroes)))]
        emoji = _choose(rng, {"g": pools[first["emoji"]["body"]][first["emoji"]["group"]]}, used)
        spec = {"index": i, "role": first["role"], "recolour_of": first["index"]}
        specs.append(spec | {"emoji": asdict(emoji), "svg": svgs[emoji.id]})
    # Near-duplicates last, so that each can point at any earlier original.
    for _ in range(COUNTS["duplicate"]):
        i = len(specs)
        rng = np.random.default_rng([seed, i])
        originals = [s["index"] for s in specs if s["role"] not in ("small", "duplicate")]
        original = specs[int(rng.choice(originals))]
        specs.append({"index": i, "role": "duplicate", "original": original})
    return specs


def rasterise(svg: str, side: int) -> Image.Image:
    """The SVG drawn at side x side by rsvg-convert: straight (non-premultiplied) RGBA."""
    png = subprocess.run(
        ["rsvg-convert", "--width", str(side), "--height", str(side)],
        input=svg.encode(),
        capture_output=True,
        check=True,
    ).stdout
    with Image.open(io.BytesIO(png)) as img:
        return img.convert("RGBA")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random colour, neither grey-dull nor too dark: what art backgrounds use."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.15, 0.9), rng.uniform(0.35, 1.0))
    return round(255 * r), round(255 * g), round(255 * b)


def _ramp(size: tuple[int, int], angle: float) -> np.ndarray:
    """0..1 along a direction, across the whole picture."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xs * np.cos(angle) + ys * np.sin(angle)
    return (t - t.min()) / max(1e-6, float(t.max() - t.min()))


def background(
    rng: np.random.Generator, kind: str, size: tuple[int, int], palette: list[tuple]
) -> Image.Image:
    """An RGB background of the given kind (not "transparent")."""
    w, h = size
    if kind == "white":
        return Image.new("RGB", size, (255, 255, 255))
    if kind == "plain":
        return Image.new("RGB", size, _colour(rng))
    if kind in ("gradient", "cluttered"):
        a, b = np.array(_colour(rng)), np.array(_colour(rng))
        t = _ramp(size, rng.uniform(0, 2 * np.pi))[..., None]
        img = Image.fromarray((a * (1 - t) + b * t).astype(np.uint8))
        if kind == "gradient":
            return img
        return _clutter(rng, img, palette)
    if kind == "stripes":
        period = rng.uniform(16, 64)
        angle = float(rng.choice([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        band = ((xs * np.cos(angle) + ys * np.sin(angle)) // (period / 2)).astype(int) % 2
        a, b = np.array(_colour(rng)), np.array(_colour(rng))
        return Image.fromarray(np.where(band[..., None] == 1, a, b).astype(np.uint8))
    if kind == "dots":
        img = Image.new("RGB", size, _colour(rng))
        draw, dot = ImageDraw.Draw(img), _colour(rng)
        step = rng.uniform(24, 64)
        r = step * rng.uniform(0.15, 0.35)
        for row, y in enumerate(np.arange(0, h + step, step)):
            shift = step / 2 if row % 2 else 0.0  # staggered, like halftone dots
            for x in np.arange(-shift, w + step, step):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=dot)
        return img
    raise ValueError(kind)


def _clutter(rng: np.random.Generator, img: Image.Image, palette: list[tuple]) -> Image.Image:
    """A busy scene: many shapes, half of them in the subject's own colours, so no border
    colour or palette explains the background."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(60, 160))):
        fill = palette[int(rng.integers(len(palette)))] if rng.random() < 0.5 else _colour(rng)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.02, 0.15) * max(w, h)
        shape = int(rng.integers(4))
        if shape == 0:
            draw.ellipse([cx - r, cy - r * rng.uniform(0.4, 1), cx + r, cy + r], fill=fill)
        elif shape == 1:
            draw.rectangle([cx - r, cy - r * rng.uniform(0.2, 1), cx + r, cy + r], fill=fill)
        elif shape == 2:
            pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in rng.uniform(0, 6.3, 3)]
            draw.polygon(pts, fill=fill)
        else:
            end = (cx + rng.uniform(-2, 2) * r, cy + rng.uniform(-2, 2) * r)
            draw.line([(cx, cy), end], fill=fill, width=int(rng.integers(3, 14)))
    return img


def _palette(rgba: Image.Image, rng: np.random.Generator) -> list[tuple]:
    px = np.asarray(rgba)
    opaque = px[px[..., 3] > 200][:, :3]
    picks = opaque[rng.integers(0, len(opaque), 6)]
    return [tuple(int(c) for c in p) for p in picks]


def _figure(alpha: np.ndarray) -> str:
    """ "bust" when the drawing ends in a flat shoulder line, "head" when it ends at the chin."""
    rows = np.flatnonzero(alpha.max(1) >= 128)
    widths = (alpha[rows] >= 128).sum(1)
    return "bust" if widths[-1] >= 0.3 * widths.max() else "head"


def stage(spec: dict, seed: int) -> tuple[Image.Image, Image.Image, dict]:
    """Picture (RGB or RGBA), truth mask (L) and label of one emoji spec."""
    rng = np.random.default_rng([seed, spec["index"], 1])
    emoji = spec["emoji"]
    distant = spec["role"] == "distant"
    side = int(rng.integers(300, 481) if distant else rng.integers(512, 769))
    art = rasterise(spec["svg"], side)
    alpha = np.asarray(art)[..., 3]
    x0, y0, x1, y1 = Image.fromarray(((alpha >= 128) * 255).astype(np.uint8)).getbbox()
    figure = "full" if emoji["body"] == "full" else None
    if emoji["body"] == "upper":
        figure = _figure(alpha)
    # Where the subject sits: busts are often cut by the bottom edge like portraits; whole
    # figures and things may stand on it (touching, not cut); otherwise they float.
    placement = "floating"
    if distant:
        placement = "distant"
    elif figure == "bust" and rng.random() < 0.5:
        placement = "flush"
    elif figure in ("full", None) and rng.random() < 0.15:
        placement = "grounded"
    extent = max(x1 - x0, y1 - y0)
    left, right = (rng.uniform(0.04, 0.35, 2) * extent).astype(int)
    top = int(rng.uniform(0.04, 0.3) * extent)
    bottom = int(rng.uniform(0.04, 0.3) * extent)
    if placement == "flush":
        bottom = -int(rng.uniform(0.0, 0.12) * (y1 - y0))
    elif placement == "grounded":
        bottom = 0
    elif distant:  # the subject's box under 10% of a canvas 3.2-4.5 times its extent
        width = round(extent * rng.uniform(3.2, 4.5) * rng.uniform(1.0, 1.3))
        height = round(extent * rng.uniform(3.2, 4.5))
        left = int(rng.uniform(0.05, 0.95) * (width - (x1 - x0)))
        top = int(rng.uniform(0.05, 1.0) * (height - (y1 - y0)))  # up to standing on the edge
        right, bottom = width - (x1 - x0) - left, height - (y1 - y0) - top
    size = (int(x1 - x0 + left + right), int(y1 - y0 + top + bottom))
    offset = (left - x0, top - y0)
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(art, offset)
    mask = layer.getchannel("A").point(lambda a: 255 if a >= 128 else 0)
    bg_kind = _pick(rng, BACKGROUND_ODDS)
    fmt = "png-rgba" if bg_kind == "transparent" else _pick(rng, FORMAT_ODDS)
    if bg_kind == "transparent":
        picture = layer
    else:
        bg = background(rng, bg_kind, size, _palette(art, rng)).convert("RGBA")
        picture = Image.alpha_composite(bg, layer).convert("RGB")
    label = {
        "kind": emoji["kind"],
        "human_like": emoji["kind"] == "hero",
        "body": emoji["body"],
        "background": bg_kind,
        "format": fmt,
        "codepoint": emoji["id"],
        "group": emoji["group"],
        "figure": figure,
        "placement": placement,
        "small": False,
        "quality": int(rng.integers(75, 96)),
    }
    if spec["role"] == "small":  # a scraped thumbnail: the whole picture 96-200 px
        factor = rng.uniform(96, 200) / max(size)
        new = (max(16, round(size[0] * factor)), max(16, round(size[1] * factor)))
        picture = picture.resize(new, Image.Resampling.LANCZOS)
        mask = layer.getchannel("A").resize(new, Image.Resampling.BILINEAR)
        mask = mask.point(lambda a: 255 if a >= 128 else 0)
        label["small"] = True
    return picture, mask, label


def _load_photo(name: str) -> Image.Image:
    if name == "grace_hopper":
        from matplotlib import cbook

        return Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def photo(spec: dict, seed: int) -> tuple[Image.Image, Image.Image, dict]:
    """A random crop and resize of a real photograph (too_realistic). There is no truth mask:
    the mask is empty, so a wrongly kept photo scores IoU 0."""
    rng = np.random.default_rng([seed, spec["index"], 1])
    name = spec["photo"]
    human = next(h for n, h, _ in PHOTOS if n == name)
    img = _load_photo(name)
    w, h = img.size
    cw, ch = w * rng.uniform(0.65, 1.0), h * rng.uniform(0.65, 1.0)
    x, y = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    long_side = rng.uniform(480, 1000)
    factor = long_side / max(cw, ch)
    size = (round(cw * factor), round(ch * factor))
    picture = img.resize(size, Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch))
    label = {
        "kind": "photo",
        "human_like": human,
        "body": "upper" if human else None,  # the three people are head-and-shoulders shots
        "background": "photo",
        "format": _pick(rng, FORMAT_ODDS),
        "codepoint": None,
        "group": f"photo {name}",
        "figure": None,
        "placement": None,
        "small": False,
        "quality": int(rng.integers(75, 96)),
    }
    return picture, Image.new("L", size, 0), label


def duplicate(
    original: tuple[Image.Image, Image.Image, dict], seed: int, index: int, root: str
) -> tuple[Image.Image, Image.Image, dict]:
    """A re-saved copy of an earlier picture: slightly cropped, rescaled, brightened, JPEG."""
    rng = np.random.default_rng([seed, index, 1])
    picture, mask, label = original
    w, h = picture.size
    box = tuple(
        float(v)
        for v in (
            w * rng.uniform(0, 0.03),
            h * rng.uniform(0, 0.03),
            w * (1 - rng.uniform(0, 0.03)),
            h * (1 - rng.uniform(0, 0.03)),
        )
    )
    factor = rng.uniform(0.6, 0.95)
    size = (round((box[2] - box[0]) * factor), round((box[3] - box[1]) * factor))
    if picture.mode == "RGBA":  # a re-saved JPEG has a background: white, as browsers show it
        white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(white, picture).convert("RGB")
    picture = picture.resize(size, Image.Resampling.LANCZOS, box=box)
    picture = ImageEnhance.Brightness(picture).enhance(rng.uniform(0.94, 1.06))
    mask = mask.resize(size, Image.Resampling.BILINEAR, box=box).point(
        lambda a: 255 if a >= 128 else 0
    )
    label = {**label, "format": "jpeg", "quality": int(rng.integers(75, 92)), "duplicate_of": root}
    if label["background"] == "transparent":
        label["background"] = "white"
    return picture, mask, label


def file_name(index: int, fmt: str) -> str:
    return f"img_{index:05d}.{EXTENSIONS[fmt]}"


def make(spec: dict, seed: int) -> tuple[Image.Image, Image.Image, dict]:
    """Picture i from its spec alone (duplicates re-make their original): deterministic."""
    if spec["role"] == "duplicate":
        original_spec = spec["original"]
        original = make(original_spec, seed)
        root = file_name(original_spec["index"], original[2]["format"])
        return duplicate(original, seed, spec["index"], root)
    if "photo" in spec:
        return photo(spec, seed)
    return stage(spec, seed)


def _encode(picture: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        picture.convert("RGB").save(buf, "JPEG", quality=quality)
    elif fmt == "webp":
        picture.convert("RGB").save(buf, "WEBP", quality=quality, method=4)
    else:  # png and png-rgba: the mode says which
        picture.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def write_one(out: Path, spec: dict, seed: int) -> dict:
    """Write picture and mask of one spec; return its label record."""
    picture, mask, label = make(spec, seed)
    name = file_name(spec["index"], label["format"])
    (out / "raw" / name).write_bytes(_encode(picture, label["format"], label.pop("quality")))
    mask_name = f"masks/{Path(name).stem}.png"
    mask.save(out / mask_name, "PNG")
    return {
        "file": name,
        **{k: label[k] for k in ("kind", "human_like", "body", "background", "format")},
        "size": list(picture.size),
        "mask": mask_name,
        "bbox": list(mask.getbbox() or (0, 0, 0, 0)),
        "head_box": None,
        "duplicate_of": label.get("duplicate_of"),
        **{k: label[k] for k in ("codepoint", "group", "figure", "placement", "small")},
    }


# family -> (npm package to `npm pack`, its tarball, what the artwork is and its licence)
FAMILIES = {
    "noto": (
        "@svgmoji/noto@3.2.0", PACKAGE,
        "Noto Emoji (Google), Apache License 2.0, from the npm package @svgmoji/noto 3.2.0 (MIT "
        "wrapper)",
    ),
    # @svgmoji/blob ships no artwork (3.1.0 and 3.2.0 hold only code); Noto Emoji v1 is the
    # blob-era Noto that Blobmoji continues, drawn differently from today's Noto
    "blob": (
        "@iconify-json/noto-v1@1.2.5", "iconify-json-noto-v1-1.2.5.tgz",
        "Noto Emoji v1 (Google, the blob-era artwork), Apache License 2.0, from the npm package "
        "@iconify-json/noto-v1 1.2.5",
    ),
    "fluent": (
        "@iconify-json/fluent-emoji-flat@1.2.6", "iconify-json-fluent-emoji-flat-1.2.6.tgz",
        "Fluent Emoji Flat (Microsoft), MIT License, from the npm package "
        "@iconify-json/fluent-emoji-flat 1.2.6",
    ),
    # three more families to check what was chosen on the first three (Twemoji's and
    # OpenMoji's faceless figures then shaped the figure cue; EmojiOne chose nothing until
    # the painted face view's gate was chosen on all sets). EmojiOne 2.3 predates Unicode 10
    # (no superhero, no robot, few gendered figures): its set is smaller
    "twemoji": (
        "@iconify-json/twemoji@1.2.5", "iconify-json-twemoji-1.2.5.tgz",
        "Twemoji (Twitter), CC BY 4.0, from the npm package @iconify-json/twemoji 1.2.5",
    ),
    "openmoji": (
        "@iconify-json/openmoji@1.2.29", "iconify-json-openmoji-1.2.29.tgz",
        "OpenMoji, CC BY-SA 4.0, from the npm package @iconify-json/openmoji 1.2.29",
    ),
    "emojione": (
        "@iconify-json/emojione@1.2.3", "iconify-json-emojione-1.2.3.tgz",
        "EmojiOne 2.3, CC BY 4.0, from the npm package @iconify-json/emojione 1.2.3",
    ),
    # added after EmojiOne: Streamline's outlined cartoons (its busts then shaped the tall-bust
    # rule, its yellow faces the painted face view), 619 of its 787 icons keyed through
    # Fluent's names (see realart_iconify). Every base looked at: upper and full as labelled, in
    # yellow and a light skin; only five whole-figure groups (walking, running, two dancers,
    # levitating) and four insects, so full roles fall back to upper. Its busts mostly end in a
    # rounded line that _figure takes for a chin ("figure": "head")
    "streamline": (
        "@iconify-json/streamline-emojis@1.2.4", "iconify-json-streamline-emojis-1.2.4.tgz",
        "Streamline Emojis (Streamline, webalys), CC BY 4.0, from the npm package "
        "@iconify-json/streamline-emojis 1.2.4",
    ),
    # wholly held out, added last: Mozilla's flat Firefox OS drawings, 606 of
    # its 1034 icons keyed by their Unicode names through Fluent's codepoints (see
    # realart_iconify). Every hero base looked at: upper and full as labelled. One drawing per
    # emoji (no skin tones, no genders): no recolours (the recolour loop stops once no drawn
    # hero has an unused variant) and only 32 heroes (26 upper, 6 full), after which hero roles
    # are skipped as EmojiOne's are; no robot. Its people are mostly heads without shoulders,
    # and most of its busts end in a rounded shirt line that _figure takes for a chin
    # ("figure": "head"), as Streamline's do
    "fxemoji": (
        "@iconify-json/fxemoji@1.2.2", "iconify-json-fxemoji-1.2.2.tgz",
        "Firefox OS Emoji (Mozilla), Apache License 2.0, from the npm package "
        "@iconify-json/fxemoji 1.2.2",
    ),
}  # fmt: skip
NOTICE = """Real-art benchmark for heroforge prepare, built by benchmarks/realart_build.py.
Emoji artwork: {artwork}. Photographs: grace_hopper.jpg (matplotlib sample data, public
domain); astronaut, rocket (NASA, public domain), camera, coffee, chelsea (CC0) from
scikit-image. A development resource only: not part of heroforge and not for redistribution.
"""


def load_family(family: str, packages: Path) -> dict[str, str]:
    """Sprite id -> standalone SVG of one family, from its tarball in `packages`."""
    from realart_iconify import KEYINGS, load_iconify  # sibling script

    tarball = packages / FAMILIES[family][1]
    if not tarball.exists():
        raise SystemExit(f"no {tarball}: cd {packages} && npm pack {FAMILIES[family][0]}")
    if family == "noto":
        return load_sprite(tarball)
    # noto-v1, Streamline and fxemoji have no chars.json of their own: their icons are keyed
    # through Fluent's (noto-v1 is named as Fluent, the other two by their own KEYINGS)
    names_from = packages / FAMILIES["fluent"][1]
    keying = family if family in KEYINGS else None
    return load_iconify(tarball, names_from=names_from, keying=keying)


def art_id(svg: str) -> str:
    """The same id for the same drawing: the SVG with its own id (Noto's sprite names each
    <svg> by codepoint) and its whitespace left out; identical rasters give no more pairs."""
    opening, rest = svg.split(">", 1)
    opening = re.sub(r'\s+id="[^"]*"', "", opening)
    return hashlib.sha256(" ".join(f"{opening}>{rest}".split()).encode()).hexdigest()[:16]


def add_art(labels: list[dict], svgs: dict[str, str]) -> None:
    """Set each label's "art" from its codepoint's drawing (None for photographs)."""
    for label in labels:
        codepoint = label["codepoint"]
        label["art"] = None if codepoint is None else art_id(svgs[codepoint])


def annotate(out: Path, packages: Path) -> list[dict]:
    """Add "art" to the labels.json of a set built without it; the pictures stay as they are."""
    path = out / "labels.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    add_art(index["images"], load_family(index["family"], packages))
    partial = path.with_suffix(".json.partial")  # a benchmark reading it never sees half
    partial.write_text(json.dumps(index, indent=1), encoding="utf-8")
    partial.replace(path)
    return index["images"]


def build(out: Path, family: str, packages: Path, seed: int, workers: int) -> list[dict]:
    """Write the whole set into out (raw/, masks/, labels.json, NOTICE.txt); returns labels."""
    repo = Path(__file__).resolve().parents[1]
    if out.resolve().is_relative_to(repo):  # the set is a cache, never part of the repository
        raise SystemExit(f"--out must be outside the repository {repo}")
    svgs = load_family(family, packages)
    specs = plan(svgs, seed, family)
    for sub in ("raw", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).iterdir():
            old.unlink()
    n = len(specs)
    with ProcessPoolExecutor(workers or None) as pool:
        labels = list(pool.map(write_one, [out] * n, specs, [seed] * n, chunksize=8))
    for spec, label in zip(specs, labels, strict=True):
        first = spec.get("recolour_of")
        label["recolour_of"] = None if first is None else labels[first]["file"]
    add_art(labels, svgs)
    index = {
        "generator": GENERATOR,
        "family": family,
        "source": f"{FAMILIES[family][0]} + photographs",
        "seed": seed,
        "count": len(labels),
        "images": labels,
    }
    (out / "labels.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    artwork = FAMILIES[family][2]
    (out / "NOTICE.txt").write_text(NOTICE.format(artwork=artwork), encoding="utf-8")
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", choices=sorted(FAMILIES), default="noto")
    parser.add_argument("--out", type=Path, help="default: /work/cache/realart/FAMILY")
    parser.add_argument("--packages", type=Path, default=Path("/work/cache/realart"),
                        help="where the npm tarballs are")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=0, help="processes; 0 = one per core")
    parser.add_argument("--annotate", action="store_true",
                        help="only add the art field to the labels.json in --out")  # fmt: skip
    args = parser.parse_args()
    out = args.out or args.packages / args.family
    if args.annotate:
        labels = annotate(out, args.packages)
    else:
        labels = build(out, args.family, args.packages, args.seed, args.workers)
    counts: dict[str, int] = {}
    for lb in labels:
        key = f"{lb['kind']}/{lb['body']}"
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps({"pictures": len(labels), "out": str(out), "counts": counts}))


if __name__ == "__main__":
    main()
