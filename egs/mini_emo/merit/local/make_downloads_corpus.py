#!/usr/bin/env python3
"""Build the shipped mini corpus (egs/mini_emo/merit/downloads/) from Debian packages.

    make_downloads_corpus.py --pkgroot DIR --out DIR

DIR/<package>/ must hold each package of PACKAGES unpacked with ``dpkg-deb -x``
(local/make_downloads.sh downloads and unpacks them).  Every file the corpus
contains is named in the tables below (no "first N found"), and every random
choice (babble offsets, typing rhythm) comes from a seeded generator, so two runs
on the same packages give byte-identical files.

Output::

    speech/speakers.tsv                 speaker, gender, language, source_package
    speech/<spk>/<spk>_NNN.flac         20 read utterances per speaker
    noise/noise.tsv                     file, type, split, category, source_package
    noise/<split>/<type>_NN.flac        split in train, dev, test
    ATTRIBUTION.md                      sources, licences, authors, processing

Everything is written as FLAC, 16 kHz, mono, 16 bit.  Speech is trimmed to the
spoken part (plus a 0.1 s margin) and brought to -23 dBFS RMS; noise pieces to
-25 dBFS RMS; both with peaks below -1 dBFS.  Needs numpy, scipy, soundfile, and
ffmpeg on PATH (to decode the G.722 prompts).
"""
import argparse
import io
import struct
import subprocess
import sys
import time
import zlib
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SR = 16000
SPEECH_RMS_DB = -23.0
NOISE_RMS_DB = -25.0
PEAK_LIMIT_DB = -1.2          # target ceiling; the hard requirement is < -1 dBFS
MARGIN_S = 0.1                # silence kept around trimmed speech
SPEECH_MIN_S, SPEECH_MAX_S = 1.5, 6.0
QUIET_FRAME_DB = -30.0        # a 30 ms noise frame this far below the piece RMS is "quiet"
MAX_QUIET_FRACTION = 0.20
XFADE_S = 0.05                # cross-fade between concatenated noise recordings

# --------------------------------------------------------------------------------------
# Source packages (Debian bookworm).  Versions are the ones the shipped files came from.
# --------------------------------------------------------------------------------------
CC_BY_SA_30 = "CC-BY-SA-3.0 (https://creativecommons.org/licenses/by-sa/3.0/)"
CC_BY_30 = "CC-BY-3.0 (https://creativecommons.org/licenses/by/3.0/)"
PACKAGES = {
    "asterisk-core-sounds-en-g722": dict(
        version="1.6.1-1", license=CC_BY_SA_30,
        holder="Copyright 2003-2010 Allison Smith (recorded by Allison Smith, "
               "http://www.theivrvoice.com; financial contributions by Digium, Inc.)"),
    "asterisk-core-sounds-fr-g722": dict(
        version="1.6.1-1", license=CC_BY_SA_30,
        holder="Copyright 2006-2008 June Wallack (recorded by June Wallack; French "
               "translation by Clod Patry, Kristopher Lalletti, June Wallack)"),
    "asterisk-core-sounds-it-g722": dict(
        version="1.6.1-1", license=CC_BY_30,
        holder="Copyright 2012 Carlo Flora, http://www.segreterietelefoniche.it "
               "(recorded by Carlo Flora; translated by Silvia Petrin)"),
    "asterisk-core-sounds-ru-g722": dict(
        version="1.6.1-1", license=CC_BY_30,
        holder="Copyright 2010 Maxim (provided by Maxim Topal, http://www.ivrvoice.ru)"),
    "festvox-ru": dict(
        version="0.5+dfsg-6",
        license="BSD-like licence of Nickolay V. Shmyrev (text reproduced below)",
        holder="Copyright (c) 2005 Nickolay V. Shmyrev (msu_ru_nsh_clunits voice database)"),
    "tuxpaint-stamps-default": dict(
        version="2022.06.04-1",
        license="GPL-2+ (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html)",
        holder="Copyright 2002-2022 Bill Kendrick and the Tux Paint contributors; "
               "spoken descriptions by the recorders named per speaker below"),
    "asterisk-moh-opsound-g722": dict(
        version="2.03-1.1", license=CC_BY_SA_30,
        holder="Copyright 2009 Paul Shuler (Macroform); 2009 Manolo Camp; "
               "2008 Reno Project"),
    "megaglest-data": dict(
        version="3.13.0-3", license=CC_BY_SA_30,
        holder="Copyright 2001-2008 The Glest Team, 2008-2017 The MegaGlest Team "
               "(tilesets by Titus Tscharntke, Philipp Tscharntke and others)"),
    "openttd-opensfx": dict(
        version="1.0.3-2", license=CC_BY_SA_30 + "; individual sounds CC-BY-3.0 or CC0 "
                                                 "as stated per sound below",
        holder="OpenSFX authors (per sound: original recordist and editor as stated below)"),
    "bucklespring-data": dict(
        version="1.4.0-2",
        license="GPL-2+ (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html)",
        holder="Copyright 2016 Ico Doornekamp (recordings of an IBM Model M keyboard)"),
}

# --------------------------------------------------------------------------------------
# Speech: eight speakers x 20 utterances.  Paths are relative to the package root.
# --------------------------------------------------------------------------------------
# Asterisk prompt names used for all four Asterisk voices (same prompts, four languages).
AST_PROMPTS = [
    "all-circuits-busy-now", "call-fwd-unconditional", "conf-enteringno", "conf-extended",
    "conf-locked", "conf-lockednow", "conf-unlockednow", "confbridge-conf-begin",
    "confbridge-locked", "confbridge-participants", "confbridge-unlocked",
    "confbridge-unmuted", "queue-thereare", "tt-somethingwrong", "vm-enter-num-to-call",
    "vm-from-phonenumber", "vm-marked-urgent", "vm-star-cancel", "vm-then-pound",
    "vm-unknown-caller",
]


def _ast(voice):
    return [f"usr/share/asterisk/sounds/{voice}/{p}.g722" for p in AST_PROMPTS]


FESTVOX_RU_DIR = "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav/"
# (recording, start s, end s): one phrase per sentence, cut inside the pauses (>= 0.2 s)
# that the voice's own phone labels (lab/ru_NNNN.lab) mark around it.
FESTVOX_RU_PHRASES = [
    ("0001", 3.00, 5.12), ("0022", 1.83, 4.41), ("0065", 1.80, 3.68), ("0131", 0.08, 2.62),
    ("0149", 0.19, 2.52), ("0171", 6.75, 9.13), ("0173", 0.17, 2.28), ("0250", 0.14, 2.56),
    ("0383", 3.24, 5.42), ("0421", 4.65, 7.08), ("0422", 2.84, 5.14), ("0427", 0.15, 2.48),
    ("0474", 3.02, 4.89), ("0526", 0.22, 2.18), ("0562", 3.81, 5.69), ("0585", 0.27, 2.92),
    ("0611", 3.49, 5.72), ("0739", 3.05, 5.58), ("0767", 7.07, 9.19), ("0782", 0.15, 2.01),
]
FESTVOX_RU = [f"{FESTVOX_RU_DIR}ru_{n}.wav@{a:.2f}-{b:.2f}" for n, a, b in FESTVOX_RU_PHRASES]

TUX = "usr/share/tuxpaint/stamps/"
# Tux Paint stamp names; the file is f"{TUX}{stamp}_desc_{lang}.ogg".
TUX_EL_STAMPS = [
    'animals/mammals/bovines/sheep_lamb', 'clothes/armor/cartoon/knight_helmet',
    'clothes/hats/blue_fedora', 'clothes/hats/feathered_hat',
    'food/dessert/cartoon/birthday_cake', 'food/fruit/cartoon/apple_core',
    'food/fruit/cartoon/prune', 'food/fruit/orange_seville', 'food/nuts/walnut_shelled',
    'hobbies/camera_35mm', 'hobbies/music/string/guitar_electric',
    'household/arttools/highlighter', 'household/tools/paintbrush_large',
    'seasonal/halloween/grave-b', 'seasonal/halloween/grave-g',
    'symbols/math/operators/op8_lessthanequal',
    'symbols/math/operators/op9_greaterthanequal', 'symbols/money/japanese/yen010',
    'town/roadsigns/traffic_cone', 'vehicles/masstransit/cartoon/double_decker_bus',
]
TUX_BE_STAMPS = [
    'animals/birds/albino_peahen', 'animals/fish/bluegroper',
    'animals/mammals/bovines/indian_blackbuck', 'household/clothes_iron',
    'household/tools/spade', 'household/wheelie_bin', 'military/vehicles/f22_raptor',
    'people/body_parts/hair_manga_2', 'people/toys/grannysmith', 'plants/trees/rambutan',
    'symbols/music/note_025_a', 'symbols/music/rest_025', 'town/houses/cartoon/cathedral',
    'town/roadsigns/xing_ped', 'vehicles/construction/cartoon/cementMixer',
    'vehicles/construction/cartoon/towTruck', 'vehicles/cycle/pink_tricycle',
    'vehicles/emergency/sedan_police', 'vehicles/ship/cartoon/tugboat',
    'vehicles/ship/walnutBoat',
]
TUX_RU_STAMPS = [
    'animals/birds/albino_peahen', 'animals/fish/stripedfish',
    'animals/mammals/bovines/sheep_lamb', 'animals/mammals/camel/dromedary',
    'household/electronics/camera', 'household/electronics/laptop',
    'household/electronics/mouse', 'household/electronics/phone', 'household/padlock_open',
    'military/ammunition/old_naval_shell', 'symbols/money/canadian/coins/001penny',
    'symbols/money/canadian/coins/005nickel', 'symbols/money/euro/coins/001',
    'symbols/money/japanese/yen100', 'symbols/money/us/coins/001penny',
    'symbols/money/us/coins/005nickel', 'symbols/money/us/coins/010dime',
    'town/houses/cartoon/warehouse', 'town/roadsigns/traffic_cone',
    'vehicles/locomotive/cartoon/caboose',
]
# BABBLE_STAMPS[piece][talker language]: disjoint utterance lists per piece.
BABBLE_STAMPS = {
    'babble_01': {
        'es': [
            'animals/birds/guineafowl', 'clothes/top_skirt',
            'household/dishes/cartoon/fork', 'medical/bandage_adhesive',
            'plants/flowers/appooppanthady', 'plants/flowers/bolsom',
            'symbols/alphabets/asl/asl_k', 'symbols/math/operators/op9_greaterthanequal',
            'town/flags/whiteflag', 'vehicles/flight/planes/cartoon/plane',
        ],
        'ro': [
            'clothes/clotheshanger', 'clothes/hats/green_fedora', 'clothes/hats/greenhat',
            'household/electronics/inkjet_printer',
            'symbols/math/operators/op9_greaterthanequal', 'symbols/music/note_012_a',
            'town/houses/cartoon/swisshome',
        ],
        'da': [
            'food/fruit/apple_granny_smith', 'food/fruit/cartoon/lemon_slice',
            'food/fruit/sliced_orange', 'food/spices/ginger', 'food/vegetables/garlics',
            'food/vegetables/tomato', 'town/flags/checkeredflag',
            'town/houses/cartoon/fishery', 'town/houses/cartoon/monastery',
            'vehicles/bikewheel', 'vehicles/construction/dumper',
            'vehicles/locomotive/cartoon/caboose',
        ],
        'fr': [
            'animals/birds/turkey', 'animals/mammals/apes/tamarin_emperor',
            'people/cartoon/girl_in_wheelchair', 'symbols/alphabets/asl/asl_n',
            'symbols/alphabets/asl/asl_w', 'symbols/alphabets/asl/asl_x',
            'town/roadsigns/dead_end_sign', 'vehicles/iso_lorry2',
        ],
        'ca': [
            'animals/fish/butterflyfish', 'food/fruit/cartoon/apple_core_01',
            'food/vegetables/corn', 'plants/flowers/anthoorium',
            'seasonal/easter/wrapped_chocolate_easter_egg_2', 'space/planets/5_jupiter',
            'town/houses/cartoon/circus', 'town/houses/cartoon/cityhouse',
            'town/monuments/cartoon/magic_stones', 'vehicles/iso_lorry3',
        ],
    },
    'babble_02': {
        'es': [
            'animals/mammals/badger', 'animals/mammals/bovines/bison',
            'food/fruit/cartoon/apple_core_01', 'household/key',
            'household/padlock_closed', 'seasonal/easter/wrapped_chocolate_easter_egg_2',
            'symbols/alphabets/asl/asl_m', 'symbols/money/japanese/yen010',
        ],
        'ro': [
            'animals/birds/rainbow-lorikeet', 'animals/fish/dolphinfish',
            'clothes/hats/blue_fedora', 'people/body_parts/hair_manga', 'plants/thyme',
            'symbols/alphabets/asl/asl_a', 'vehicles/iso_lorry4',
        ],
        'da': [
            'animals/birds/cartoon/tux', 'animals/mammals/echidna',
            'food/dessert/cartoon/birthday_cake', 'food/fruit/apple_sierra_beauty',
            'food/vegetables/mushroom', 'town/cartoon/watch_tower',
            'town/houses/cartoon/tower_flag_red', 'town/roadsigns/traffic_cone',
            'town/roadsigns/yield', 'vehicles/cycle/bluebike', 'vehicles/race/f1_car',
        ],
        'fr': [
            'animals/marsupials/wombat', 'clothes/red_highheel',
            'household/Washing-machine', 'household/clothes_iron',
            'household/dishes/expresso', 'household/tools/paintbrush_large',
            'people/cartoon/man_in_suit', 'seasonal/christmas/Mince_Pie',
            'sports/tennis_racket',
        ],
        'ca': [
            'clothes/hats/brownhat2', 'food/fruit/apple_fuji',
            'seasonal/halloween/grave-f', 'seasonal/winter/snowman2',
            'symbols/money/japanese/yen005', 'symbols/money/japanese/yen100',
            'town/houses/cartoon/swisshome', 'vehicles/construction/cartoon/towTruck',
            'vehicles/cycle/pink_tricycle', 'vehicles/emergency/firetruck',
            'vehicles/ship/cartoon/bathyscape',
        ],
    },
    'babble_03': {
        'es': [
            'animals/mammals/cats/tiger_sumatran', 'animals/mammals/pig_golden2',
            'food/fruit/cartoon/pineapple', 'hobbies/music/string/cello',
            'town/monuments/cartoon/graveyard', 'vehicles/flight/balloon360',
        ],
        'ro': [
            'household/dishes/expresso', 'household/tools/paintbrush_large',
            'sports/football', 'town/flags/blue-and-yellowflag',
        ],
        'da': [
            'animals/birds/pink_flamingo', 'space/toyrocket',
            'town/houses/cartoon/blacksmith', 'town/houses/cartoon/medieval_tent',
            'town/roadsigns/school_sign', 'vehicles/masstransit/cartoon/schoolbus',
        ],
        'fr': [
            'animals/birds/heron_greatblue', 'animals/mammals/aquatic/otter',
            'animals/mammals/bovines/gnu-stand', 'animals/mammals/cats/cartoon/lion',
            'food/vegetables/pattypan_squash', 'symbols/alphabets/asl/asl_q',
        ],
        'ca': [
            'animals/insects/cartoon/ladybug', 'household/rubberduck',
            'seasonal/christmas/xmas_tp_bulb', 'vehicles/bikewheel', 'vehicles/toy_truck',
            'vehicles/wheel_tractor',
        ],
    },
    'babble_04': {
        'es': [
            'animals/birds/cartoon/tux', 'animals/mammals/equines/zebra2',
            'food/dessert/cartoon/pink_cake', 'household/umbrella',
            'military/final-roll-call', 'people/cartoon/woman_dancing',
            'seasonal/easter/bunny',
        ],
        'ro': [
            'animals/insects/cartoon/snail', 'animals/mammals/wildboar',
            'clothes/red_highheel', 'food/fruit/apple_fuji',
            'hobbies/music/percussion/drumkit', 'seasonal/halloween/grave-d',
            'town/houses/cartoon/stables', 'town/roadsigns/no_entry_sign',
        ],
        'da': [
            'animals/dinosaur/cartoon/dinosaurSings', 'food/vegetables/corn',
            'space/planets/5_jupiter', 'space/spacewalk', 'town/houses/cartoon/hunter',
            'town/houses/cartoon/pinkhome', 'town/houses/cartoon/swisshome',
            'vehicles/emergency/sedan_police',
        ],
        'fr': [
            'seasonal/winter/snowflake', 'symbols/alphabets/asl/asl_g',
            'symbols/alphabets/asl/asl_zzz_0', 'symbols/money/00_symbols/dollars_2_cent',
            'town/monuments/cartoon/pyramid', 'vehicles/ship/cartoon/bathyscape',
        ],
        'ca': [
            'animals/birds/little-penguin', 'animals/mammals/equines/horse',
            'animals/mammals/equines/zebra', 'household/tools/cementmixer',
            'military/paratrooper', 'plants/flowers/yellow-flower',
            'seasonal/easter/chick-hatched', 'symbols/chess/b_1_king',
            'town/cartoon/fountain', 'town/flags/whiteflag',
            'vehicles/construction/cartoon/terex',
        ],
    },
}


def _tux(stamps, lang):
    return [f"{TUX}{s}_desc_{lang}.ogg" for s in stamps]


TUX_EL = _tux(TUX_EL_STAMPS, "el")
TUX_BE = _tux(TUX_BE_STAMPS, "be")
TUX_RU = _tux(TUX_RU_STAMPS, "ru")

SPEAKERS = [
    dict(id="en_f1", gender="F", language="en", package="asterisk-core-sounds-en-g722",
         files=_ast("en_US_f_Allison"), voice="Allison Smith",
         gender_source="package credits (Allison Smith) and the voice directory name "
                       "en_US_f_Allison; median f0 192 Hz"),
    dict(id="fr_f1", gender="F", language="fr", package="asterisk-core-sounds-fr-g722",
         files=_ast("fr_CA_f_June"), voice="June Wallack",
         gender_source="package credits (June Wallack) and the voice directory name "
                       "fr_CA_f_June; median f0 204 Hz"),
    dict(id="ru_f1", gender="F", language="ru", package="asterisk-core-sounds-ru-g722",
         files=_ast("ru_RU_f_IvrvoiceRU"), voice="IvrvoiceRU voice (provided by Maxim Topal)",
         gender_source="the voice directory name ru_RU_f_IvrvoiceRU; median f0 221 Hz"),
    dict(id="it_m1", gender="M", language="it", package="asterisk-core-sounds-it-g722",
         files=_ast("it_IT_m_Carlo"), voice="Carlo Flora",
         gender_source="package credits (Carlo Flora) and the voice directory name "
                       "it_IT_m_Carlo; note: median f0 177 Hz, high for a male voice, "
                       "while the formants F3/F4 are in the range of the male speakers"),
    dict(id="ru_m1", gender="M", language="ru", package="festvox-ru",
         files=FESTVOX_RU, voice="Nickolay V. Shmyrev (voice msu_ru_nsh)",
         gender_source="package description ('Russian male speaker for Festival'); "
                       "median f0 143 Hz"),
    dict(id="el_f1", gender="F", language="el", package="tuxpaint-stamps-default",
         files=TUX_EL, voice="Kiriaki Serafeim (Greek descriptive sounds)",
         gender_source="median f0 216 Hz"),
    dict(id="be_f1", gender="F", language="be", package="tuxpaint-stamps-default",
         files=TUX_BE, voice="Kseniya Buraya (Belarusian descriptive sounds)",
         gender_source="median f0 233 Hz"),
    dict(id="ru_m2", gender="M", language="ru", package="tuxpaint-stamps-default",
         files=TUX_RU, voice="Edwin Veber (Russian descriptive sounds)",
         gender_source="median f0 131 Hz"),
]

# --------------------------------------------------------------------------------------
# Babble talkers: Tux Paint voices that are NOT among the speech speakers.
# --------------------------------------------------------------------------------------
BABBLE_TALKERS = {
    "es": "Estefania Ortiz (Spanish descriptive sounds)",
    "ro": "Tabbytha (Romanian descriptive sounds)",
    "da": "Joe Dalton (Danish descriptive sounds)",
    "fr": "Jacques Chion / PaulK (French descriptive sounds)",
    "ca": "Pere Pujal i Carabantes (Catalan descriptive sounds)",
}
BABBLE_FILES = {piece: {lang: _tux(stamps, lang) for lang, stamps in talkers.items()}
                for piece, talkers in BABBLE_STAMPS.items()}

# --------------------------------------------------------------------------------------
# Noise pieces.
# kind "cut":    one stretch [start, start+dur) of one recording
# kind "concat": recordings (each trimmed to its sounding part) joined with cross-fades,
#                then the first `dur` seconds
# kind "babble": talkers' utterance streams summed with random offsets and gains
# kind "typing": keyboard recordings placed with a random typing rhythm
# --------------------------------------------------------------------------------------
MOH = "usr/share/asterisk/moh/"
MG = "usr/share/games/megaglest/tilesets/"
OSFX = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
BUCKLE = "usr/share/buckle/wav/"

NOISE = []   # filled below


def _cut(type_, split, category, package, file, start, dur):
    NOISE.append(dict(type=type_, split=split, category=category, kind="cut",
                      package=package, file=file, start=start, dur=dur))


# music (seen): a different track for each split
AMOH = "asterisk-moh-opsound-g722"
_cut("music", "train", "seen", AMOH, MOH + "macroform-robot_dity.g722", 30.0, 10.0)
_cut("music", "train", "seen", AMOH, MOH + "manolo_camp-morning_coffee.g722", 20.0, 10.0)
_cut("music", "dev", "seen", AMOH, MOH + "macroform-the_simplicity.g722", 40.0, 5.0)
_cut("music", "test", "seen", AMOH, MOH + "reno_project-system.g722", 20.0, 8.0)
# rain (seen): train from one recording, dev and test from two parts of another
_cut("rain", "train", "seen", "megaglest-data", MG + "birch_forest/sounds/rain.ogg", 0.5, 10.0)
_cut("rain", "train", "seen", "megaglest-data", MG + "birch_forest/sounds/rain.ogg", 12.0, 10.0)
_cut("rain", "dev", "seen", "megaglest-data", MG + "autumn/sounds/rain.ogg", 0.5, 5.0)
_cut("rain", "test", "seen", "megaglest-data", MG + "autumn/sounds/rain.ogg", 7.0, 8.0)
# insects (seen): night-time crickets, non-overlapping parts of one recording
_cut("insects", "train", "seen", "megaglest-data", MG + "dark_forest/sounds/night.ogg", 0.5, 10.0)
_cut("insects", "train", "seen", "megaglest-data", MG + "dark_forest/sounds/night.ogg", 11.0, 10.0)
_cut("insects", "dev", "seen", "megaglest-data", MG + "dark_forest/sounds/night.ogg", 22.0, 5.0)
_cut("insects", "test", "seen", "megaglest-data", MG + "dark_forest/sounds/night.ogg", 28.0, 8.0)
# babble (seen): five talkers, disjoint utterances per piece
for _split, _piece, _dur in (("train", "babble_01", 10.0), ("train", "babble_02", 10.0),
                             ("dev", "babble_03", 5.0), ("test", "babble_04", 8.0)):
    NOISE.append(dict(type="babble", split=_split, category="seen", kind="babble",
                      package="tuxpaint-stamps-default", piece=_piece, dur=_dur))
# vehicle (unseen): OpenSFX sounds #25 truck, #24 helicopter, #61 jet
NOISE.append(dict(type="vehicle", split="test", category="unseen", kind="concat",
                  package="openttd-opensfx", parts=[OSFX + "#25", OSFX + "#24", OSFX + "#61"],
                  dur=8.0))
# machinery (unseen): OpenSFX sounds #40 circular saw, #33 air hammer, #56 chainsaw
NOISE.append(dict(type="machinery", split="test", category="unseen", kind="concat",
                  package="openttd-opensfx", parts=[OSFX + "#40", OSFX + "#33", OSFX + "#56"],
                  dur=8.0))
# keyboard (unseen): typing assembled from the per-key press/release recordings
NOISE.append(dict(type="keyboard", split="test", category="unseen", kind="typing",
                  package="bucklespring-data", dur=8.0))


# ======================================================================================
# Audio helpers
# ======================================================================================
def log(msg):
    print(f"[make_downloads] {msg}", flush=True)


def _mono(x):
    return x.mean(axis=1) if x.ndim == 2 else x


def read_opensfx(cat_path, index):
    """One sound of an OpenTTD sound bank (.cat): (samples, rate, description).

    The bank starts with a table of (offset, size) uint32 pairs, the first offset
    telling the table length (its top bit is a format flag).  Each entry is a
    length-prefixed description string followed by a RIFF/WAVE file.
    """
    data = Path(cat_path).read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    if not 0 <= index < count:
        raise ValueError(f"{cat_path}: no sound #{index} (bank holds {count})")
    offset, size = struct.unpack_from("<II", data, 8 * index)
    offset &= 0x7FFFFFFF
    name_len = data[offset]
    name = data[offset + 1:offset + 1 + name_len].rstrip(b"\0").decode("utf-8", "replace")
    wav = data[offset + 1 + name_len:offset + size]
    x, rate = sf.read(io.BytesIO(wav), dtype="float64", always_2d=True)
    return _mono(x), rate, name


def read_g722(path):
    """Decode a raw G.722 file (16 kHz) with ffmpeg."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "g722",
           "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0, 16000


def load(pkgroot, package, rel):
    """(mono float64 samples at 16 kHz, original rate) of one packaged recording."""
    base = Path(pkgroot) / package
    if "#" in rel:                                   # sound bank entry: file#index
        path, idx = rel.split("#")
        x, rate, _ = read_opensfx(base / path, int(idx))
    elif rel.endswith(".g722"):
        x, rate = read_g722(base / rel)
    else:
        x, rate = sf.read(str(base / rel), dtype="float64", always_2d=True)
        x = _mono(x)
    if rate != SR:
        g = gcd(SR, rate)
        x = resample_poly(x, SR // g, rate // g)
    return np.ascontiguousarray(x, dtype=np.float64), rate


def frame_db(x, frame):
    n = len(x) // frame
    e = np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)
    return 10 * np.log10(e + 1e-12)


def active_bounds(x, rel_db=40.0, floor_db=8.0, frame_s=0.01):
    """(start, end) samples of the sounding part: 10 ms frames above a threshold set
    40 dB under the loudest frame, but at least 8 dB over the noise floor (5th
    percentile frame), and never closer than 20 dB to the loudest frame."""
    frame = int(SR * frame_s)
    e = frame_db(x, frame)
    thr = max(e.max() - rel_db, np.percentile(e, 5) + floor_db)
    thr = min(thr, e.max() - 20.0)
    act = np.nonzero(e > thr)[0]
    return int(act[0] * frame), int((act[-1] + 1) * frame)


def trim_speech(x):
    a, b = active_bounds(x)
    m = int(MARGIN_S * SR)
    return x[max(0, a - m):min(len(x), b + m)], max(0, a - m), min(len(x), b + m)


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12)


def normalise(x, target_db):
    """Scale to target RMS; lower the gain if the peak would pass PEAK_LIMIT_DB."""
    gain = 10 ** ((target_db - rms_db(x)) / 20)
    peak = np.max(np.abs(x)) * gain
    ceiling = 10 ** (PEAK_LIMIT_DB / 20)
    if peak > ceiling:
        gain *= ceiling / peak
    return x * gain


def to_int16(x):
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_flac(path, x):
    """Write 16-bit FLAC; returns the int16 samples written."""
    q = to_int16(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), q, SR, format="FLAC", subtype="PCM_16", compression_level=1.0)
    return q


def levels(q):
    """(rms dBFS, peak dBFS) of int16 samples."""
    x = q.astype(np.float64) / 32768.0
    return rms_db(x), 20 * np.log10(np.max(np.abs(x)) + 1e-12)


def quiet_fraction(q):
    x = q.astype(np.float64) / 32768.0
    return float(np.mean(frame_db(x, int(0.03 * SR)) < rms_db(x) + QUIET_FRAME_DB))


def crossfade_concat(parts):
    """Join signals with XFADE_S raised-cosine cross-fades."""
    n = int(XFADE_S * SR)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    out = parts[0].copy()
    for p in parts[1:]:
        head, tail = out[:-n], out[-n:] * ramp[::-1] + p[:n] * ramp
        out = np.concatenate([head, tail, p[n:]])
    return out


def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def fmt_s(t):
    return f"{t:.2f}"


def rate_note(rate):
    return "" if rate == SR else f"; resampled {rate} -> {SR} Hz (scipy resample_poly)"


def check_levels(label, q, target_db):
    r, p = levels(q)
    if not (abs(r - target_db) <= 1.0 and p < -1.0):
        raise RuntimeError(f"{label}: RMS {r:.2f} dBFS / peak {p:.2f} dBFS out of range")
    return r, p


# ======================================================================================
# Speech
# ======================================================================================
def build_speech(pkgroot, out, records):
    rows = []
    for spk in SPEAKERS:
        if len(spk["files"]) != 20 or len(set(spk["files"])) != 20:
            raise RuntimeError(f"{spk['id']}: needs 20 distinct files")
        durs = []
        for i, entry in enumerate(spk["files"], 1):
            rel, cut = entry.split("@") if "@" in entry else (entry, None)
            x, rate = load(pkgroot, spk["package"], rel)
            offset = 0
            if cut:                                   # a phrase of a longer recording
                start, end = (float(v) for v in cut.split("-"))
                offset = int(round(start * SR))
                x = x[offset:int(round(end * SR))]
            x = x - x.mean()
            y, a, b = trim_speech(x)
            a, b = a + offset, b + offset
            dur = len(y) / SR
            if not SPEECH_MIN_S <= dur <= SPEECH_MAX_S:
                raise RuntimeError(f"{spk['id']} {entry}: {dur:.2f} s after trimming")
            name = f"speech/{spk['id']}/{spk['id']}_{i:03d}.flac"
            q = write_flac(out / name, normalise(y, SPEECH_RMS_DB))
            r, p = check_levels(name, q, SPEECH_RMS_DB)
            durs.append(dur)
            records.append(dict(
                file=name, package=spk["package"], sources=[rel], rate=rate,
                processing=f"kept {fmt_s(a / SR)}-{fmt_s(b / SR)} s; "
                           f"RMS {r:.1f} dBFS, peak {p:.1f} dBFS"))
        rows.append((spk["id"], spk["gender"], spk["language"], spk["package"]))
        spk["mean_dur"] = float(np.mean(durs))
        log(f"speech {spk['id']} ({spk['gender']}, {spk['language']}, {spk['package']}): "
            f"20 utterances, {min(durs):.2f}-{max(durs):.2f} s, mean {np.mean(durs):.2f} s")
    with open(out / "speech" / "speakers.tsv", "w", encoding="utf-8") as f:
        f.write("speaker\tgender\tlanguage\tsource_package\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


# ======================================================================================
# Noise
# ======================================================================================
def noise_cut(pkgroot, spec):
    x, rate = load(pkgroot, spec["package"], spec["file"])
    a, n = int(round(spec["start"] * SR)), int(round(spec["dur"] * SR))
    if a + n > len(x):
        raise RuntimeError(f"{spec['file']}: only {len(x) / SR:.2f} s long")
    seg = x[a:a + n]
    src = f"{spec['file']} [{fmt_s(spec['start'])}-{fmt_s(spec['start'] + spec['dur'])} s]"
    how = f"{'G.722 decoded with ffmpeg; ' if spec['file'].endswith('.g722') else ''}" \
          f"downmixed to mono{rate_note(rate)}; cut {fmt_s(spec['start'])}-" \
          f"{fmt_s(spec['start'] + spec['dur'])} s"
    return seg, [src], how


def noise_concat(pkgroot, spec):
    parts, srcs = [], []
    for rel in spec["parts"]:
        x, rate = load(pkgroot, spec["package"], rel)
        x = x - x.mean()
        a, b = active_bounds(x, rel_db=35.0)
        parts.append(normalise(x[a:b], NOISE_RMS_DB))
        srcs.append(f"{rel} [{fmt_s(a / SR)}-{fmt_s(b / SR)} s]")
    y = crossfade_concat(parts)
    n = int(round(spec["dur"] * SR))
    if len(y) < n:
        raise RuntimeError(f"{spec['name']}: parts give only {len(y) / SR:.2f} s")
    how = (f"each recording downmixed to mono{rate_note(rate)}, trimmed to its sounding part, "
           f"brought to equal RMS, joined with {int(XFADE_S * 1000)} ms cross-fades; "
           f"first {fmt_s(spec['dur'])} s kept")
    return y[:n], srcs, how


def noise_babble(pkgroot, spec):
    rng = np.random.default_rng(seed_of(spec["name"]))
    n = int(round(spec["dur"] * SR))
    mix = np.zeros(n)
    srcs = []
    for lang in sorted(BABBLE_FILES[spec["piece"]]):
        if lang not in BABBLE_TALKERS:
            raise RuntimeError(f"babble talker {lang} has no credit")
        pieces = [np.zeros(int(rng.uniform(0.0, 0.3) * SR))]
        for rel in BABBLE_FILES[spec["piece"]][lang]:
            x, _ = load(pkgroot, spec["package"], rel)
            x = x - x.mean()
            y, _, _ = trim_speech(x)
            pieces += [normalise(y, SPEECH_RMS_DB), np.zeros(int(rng.uniform(0.08, 0.3) * SR))]
        suffix = f"_desc_{lang}.ogg"
        stamps = [rel[len(TUX):-len(suffix)] for rel in BABBLE_FILES[spec["piece"]][lang]]
        srcs.append(f"{TUX}{{{','.join(stamps)}}}_desc_{lang}.ogg")
        stream = np.concatenate(pieces)
        if len(stream) < n:
            raise RuntimeError(f"{spec['name']}: talker {lang} has only {len(stream) / SR:.2f} s")
        off = int(rng.integers(0, len(stream) - n + 1))
        mix += stream[off:off + n] * 10 ** (rng.uniform(-2.0, 2.0) / 20)
    how = (f"babble of {len(BABBLE_FILES[spec['piece']])} talkers: per talker, the listed "
           f"utterances downmixed to mono, resampled to {SR} Hz, trimmed, brought to "
           f"equal RMS and chained with 0.08-0.3 s pauses; a {fmt_s(spec['dur'])} s window at "
           f"a random offset of each chain, random gain +-2 dB, summed "
           f"(numpy seed {seed_of(spec['name'])})")
    return mix, srcs, how


# Scan codes of the letter keys and the space bar in bucklespring's recordings.
LETTER_KEYS = ["10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
               "1e", "1f", "20", "21", "22", "23", "24", "25", "26",
               "2c", "2d", "2e", "2f", "30", "31", "32"]
SPACE_KEY = "39"


def noise_typing(pkgroot, spec):
    rng = np.random.default_rng(seed_of(spec["name"]))
    n = int(round(spec["dur"] * SR))
    sounds = {}
    for key in LETTER_KEYS + [SPACE_KEY]:
        for updown in ("0", "1"):
            rel = f"{BUCKLE}{key}-{updown}.wav"
            sounds[key, updown], rate = load(pkgroot, spec["package"], rel)
    longest = max(len(s) for s in sounds.values())
    buf = np.zeros(n + 2 * longest)
    t, word_left = 0.02, int(rng.integers(2, 9))
    while t < spec["dur"]:
        if word_left == 0:
            key, word_left = SPACE_KEY, int(rng.integers(2, 9))
        else:
            key, word_left = LETTER_KEYS[int(rng.integers(len(LETTER_KEYS)))], word_left - 1
        for updown, when in (("0", t), ("1", t + rng.uniform(0.05, 0.12))):
            s = sounds[key, updown]
            a = int(round(when * SR))
            buf[a:a + len(s)] += s
        t += float(np.clip(rng.lognormal(np.log(0.14), 0.35), 0.06, 0.45))
    srcs = [f"{BUCKLE}{{{','.join(LETTER_KEYS + [SPACE_KEY])}}}-{{0,1}}.wav"]
    how = (f"typing assembled from the key-press (-0) and key-release (-1) recordings of "
           f"26 letter keys and the space bar, mono{rate_note(rate)}, placed with a "
           f"random typing rhythm (numpy seed {seed_of(spec['name'])}); first "
           f"{fmt_s(spec['dur'])} s kept")
    return buf[:n], srcs, how


def check_noise_specs():
    """Splits of one type never share material; babble talkers are not speech speakers."""
    spans = {}
    for spec in NOISE:
        if spec["kind"] == "cut":
            key = (spec["type"], spec["file"])
            span = (spec["start"], spec["start"] + spec["dur"], spec["split"])
            for a, b, split in spans.get(key, []):
                if split != span[2] and a < span[1] and span[0] < b:
                    raise RuntimeError(f"{spec['type']}: {spec['file']} overlaps across splits")
            spans.setdefault(key, []).append(span)
        elif spec["kind"] == "concat":
            key = (spec["type"], "parts")
            for other in spans.get(key, []):
                if other[1] != spec["split"] and set(other[0]) & set(spec["parts"]):
                    raise RuntimeError(f"{spec['type']}: recordings shared across splits")
            spans.setdefault(key, []).append((spec["parts"], spec["split"]))
    used = [rel for talkers in BABBLE_FILES.values() for files in talkers.values() for rel in files]
    if len(used) != len(set(used)):
        raise RuntimeError("a babble utterance is used twice")
    speech_files = {f.split("@")[0] for spk in SPEAKERS for f in spk["files"]}
    tux_speech_langs = {spk["language"] for spk in SPEAKERS
                        if spk["package"] == "tuxpaint-stamps-default"}
    if speech_files & set(used) or tux_speech_langs & set(BABBLE_TALKERS):
        raise RuntimeError("a babble talker is also a speech speaker")


def build_noise(pkgroot, out, records):
    check_noise_specs()
    counts, rows = {}, []
    for spec in NOISE:
        counts[spec["type"]] = counts.get(spec["type"], 0) + 1
        spec["name"] = f"{spec['type']}_{counts[spec['type']]:02d}"
        if spec["kind"] == "babble" and spec["piece"] != spec["name"]:
            raise RuntimeError(f"babble piece {spec['piece']} listed out of order")
        make = {"cut": noise_cut, "concat": noise_concat, "babble": noise_babble,
                "typing": noise_typing}[spec["kind"]]
        y, srcs, how = make(pkgroot, spec)
        y = y - y.mean()
        name = f"noise/{spec['split']}/{spec['name']}.flac"
        q = write_flac(out / name, normalise(y, NOISE_RMS_DB))
        r, p = check_levels(name, q, NOISE_RMS_DB)
        quiet = quiet_fraction(q)
        if quiet > MAX_QUIET_FRACTION:
            raise RuntimeError(f"{name}: {quiet:.0%} of 30 ms frames are quiet")
        records.append(dict(file=name, package=spec["package"], sources=srcs,
                            processing=f"{how}; DC removed; RMS {r:.1f} dBFS, peak {p:.1f} dBFS"))
        rows.append((name, spec["type"], spec["split"], spec["category"], spec["package"]))
        log(f"noise {name} ({spec['category']}, {spec['package']}): {len(q) / SR:.2f} s, "
            f"RMS {r:.1f} dBFS, peak {p:.1f} dBFS, quiet frames {quiet:.0%}")
    with open(out / "noise" / "noise.tsv", "w", encoding="utf-8") as f:
        f.write("file\ttype\tsplit\tcategory\tsource_package\n")
        for row in rows:
            f.write("\t".join(row) + "\n")


# ======================================================================================
# ATTRIBUTION.md
# ======================================================================================
def festvox_notice(pkgroot):
    """The licence notice of festvox-ru, verbatim from its copyright file."""
    text = (Path(pkgroot) / "festvox-ru/usr/share/doc/festvox-ru/copyright").read_text("utf-8")
    block = text.split("License: BSD-like", 1)[1].split("\nFiles:", 1)[0]
    lines = [line[1:] if line.startswith(" ") else line for line in block.strip("\n").splitlines()]
    return "\n".join("" if line.strip() == "." else line for line in lines).strip("\n")


def opensfx_credits(pkgroot):
    used = sorted({int(rel.split("#")[1]) for spec in NOISE if spec["kind"] == "concat"
                   for rel in spec["parts"]})
    cat = Path(pkgroot) / "openttd-opensfx" / OSFX
    return [(i, read_opensfx(cat, i)[2].strip()) for i in used]


def dir_size(out):
    return sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())


def write_attribution(pkgroot, out, records):
    L = []
    L.append("# Sources and licences of the mini_emo corpus\n")
    L.append("Every file under `downloads/` was made by `local/make_downloads.sh` (helper "
             "`local/make_downloads_corpus.py`) from the Debian (bookworm) packages listed "
             "below; rerunning the script reproduces the files byte for byte.  All audio is "
             "FLAC, 16 kHz, mono, 16 bit.  Each file is a modified version of the recordings "
             "named for it and is distributed under the licence of its source package (a "
             "file derived from CC-BY-SA-3.0 material is itself licensed CC-BY-SA-3.0).  The "
             "recordings were modified as described below (cut, trimmed, resampled, "
             "level-normalised, mixed); the original authors do not endorse this corpus.\n")
    L.append("TOTAL_SIZE_LINE\n")
    L.append("## Source packages\n")
    L.append("| package | version | licence | copyright holder / author (as the package states it) |")
    L.append("|---|---|---|---|")
    for name, pkg in PACKAGES.items():
        L.append(f"| {name} | {pkg['version']} | {pkg['license']} | {pkg['holder']} |")
    L.append("")
    L.append("## Speech (`speech/`)\n")
    L.append("Processing common to every utterance: decoded (the Asterisk prompts are raw "
             "G.722 at 16 kHz, decoded with ffmpeg; festvox-ru is 16 kHz PCM WAV; Tux Paint "
             "descriptions are 44.1 kHz Ogg Vorbis, decoded with libsndfile and resampled to "
             "16 kHz with scipy.signal.resample_poly), downmixed to mono, DC offset removed, "
             "leading and trailing silence trimmed (10 ms energy detector, 0.1 s margin "
             "kept; the kept range in seconds of the original is given per file), scaled to "
             "-23 dBFS RMS with the peak below -1 dBFS.  Each `ru_m1` utterance is one "
             "phrase of a longer read sentence, cut inside the pauses that the voice's own "
             "phone labels (`lab/ru_NNNN.lab`) mark around it.  Median f0 in the table: "
             "pyworld.harvest over the voiced frames of the 20 shipped utterances.  Tux Paint "
             "recorders are named as credited in the package's upstream changelog "
             "(`/usr/share/doc/tuxpaint-stamps-default/changelog.gz`).\n")
    L.append("| speaker | gender (how determined) | language | package | voice / recorder "
             "| licence | mean duration |")
    L.append("|---|---|---|---|---|---|---|")
    for spk in SPEAKERS:
        L.append(f"| {spk['id']} | {spk['gender']} ({spk['gender_source']}) | {spk['language']} "
                 f"| {spk['package']} | {spk['voice']} | "
                 f"{PACKAGES[spk['package']]['license'].split(' (')[0]} | {spk['mean_dur']:.2f} s |")
    L.append("")
    L.append("| file | package | original file in the package | processing |")
    L.append("|---|---|---|---|")
    for r in records:
        if r["file"].startswith("speech/"):
            L.append(f"| {r['file']} | {r['package']} | `/{r['sources'][0]}` | {r['processing']} |")
    L.append("")
    L.append("## Noise (`noise/`)\n")
    L.append("Every piece is scaled to -25 dBFS RMS with the peak below -1 dBFS, and at most "
             "20 % of its 30 ms frames lie more than 30 dB below its RMS.  Pieces of one type "
             "in different splits come from different recordings or from non-overlapping "
             "stretches of one recording.\n")
    L.append("Babble talkers (Tux Paint spoken descriptions; none of them is a speech speaker):\n")
    for lang, who in sorted(BABBLE_TALKERS.items()):
        L.append(f"- `{lang}`: {who}")
    L.append("")
    L.append("| file | package | original file(s) in the package | licence | processing |")
    L.append("|---|---|---|---|---|")
    for r in records:
        if r["file"].startswith("noise/"):
            srcs = "<br>".join(f"`/{s}`" for s in r["sources"])
            lic = PACKAGES[r["package"]]["license"].split(" (")[0]
            L.append(f"| {r['file']} | {r['package']} | {srcs} | {lic} | {r['processing']} |")
    L.append("")
    L.append("### OpenSFX sounds used\n")
    L.append("The descriptions stored with each sound in `opensfx.cat` (author, editor, "
             "licence of the sound); the OpenSFX collection as a whole is CC-BY-SA-3.0:\n")
    for i, desc in opensfx_credits(pkgroot):
        L.append(f"- #{i}: {desc}")
    L.append("")
    L.append("### Licence notice of festvox-ru (reproduced as its licence requires)\n")
    L.append("```")
    L.append(festvox_notice(pkgroot))
    L.append("```")
    L.append("")
    L.append("Modification notice: the festvox-ru recordings used for `ru_m1` were trimmed, "
             "level-normalised and re-encoded as FLAC as described above.\n")
    text = "\n".join(L)
    path = out / "ATTRIBUTION.md"
    total = 0
    for _ in range(5):                    # the stated size includes this file itself
        line = (f"Total size of `downloads/`: {total} bytes ({total / 1e6:.2f} MB), "
                f"{sum(1 for _ in out.rglob('*.flac'))} FLAC files.")
        path.write_text(text.replace("TOTAL_SIZE_LINE", line), encoding="utf-8")
        new_total = dir_size(out)
        if new_total == total:
            break
        total = new_total
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pkgroot", required=True, help="directory of unpacked packages")
    ap.add_argument("--out", required=True, help="output directory (must not exist)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        sys.exit(f"{out} exists; remove it first")
    for name in PACKAGES:
        if not (Path(args.pkgroot) / name).is_dir():
            sys.exit(f"{args.pkgroot}/{name}: package not unpacked")
    t0 = time.time()
    (out / "speech").mkdir(parents=True)
    (out / "noise").mkdir(parents=True)
    records = []
    build_speech(args.pkgroot, out, records)
    build_noise(args.pkgroot, out, records)
    total = write_attribution(args.pkgroot, out, records)
    log(f"wrote {len(records)} audio files, {total} bytes in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
