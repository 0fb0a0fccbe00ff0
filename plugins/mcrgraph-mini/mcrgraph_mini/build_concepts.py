"""The concepts of the mini world: digits, letters, numbers, emoji words and event sounds, with
their captions and where their signals come from. Used by ``mcrgraph_mini.build``."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NUMBER_WORDS = {
    10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen", 16: "sixteen",
    17: "seventeen", 18: "eighteen", 19: "nineteen", 20: "twenty", 30: "thirty", 40: "forty", 50: "fifty",
    60: "sixty", 70: "seventy", 80: "eighty", 90: "ninety",
}

# Emoji words: (emoji, spoken name). The name is the emoji's Unicode name made plain ("DOG FACE"
# -> "dog"); words that sound like a letter or digit ("bee", "eye", "tea", "ate") are left out,
# and so are the emoji the event sounds below use for their pictures.
EMOJI = [
    ("🐶", "dog"), ("🐱", "cat"), ("🐭", "mouse"), ("🐰", "rabbit"), ("🐻", "bear"), ("🐼", "panda"),
    ("🐯", "tiger"), ("🦁", "lion"), ("🐮", "cow"), ("🐷", "pig"), ("🐸", "frog"), ("🐔", "chicken"),
    ("🐧", "penguin"), ("🐦", "bird"), ("🦆", "duck"), ("🦉", "owl"), ("🐴", "horse"), ("🦄", "unicorn"),
    ("🦋", "butterfly"), ("🐌", "snail"), ("🐢", "turtle"), ("🐍", "snake"), ("🐙", "octopus"),
    ("🦀", "crab"), ("🐟", "fish"), ("🐬", "dolphin"), ("🐳", "whale"), ("🦈", "shark"), ("🐊", "crocodile"),
    ("🐘", "elephant"), ("🦒", "giraffe"), ("🦓", "zebra"), ("🐪", "camel"), ("🐑", "sheep"), ("🐐", "goat"),
    ("🦊", "fox"), ("🦇", "bat"), ("🦜", "parrot"), ("🕷", "spider"), ("🍎", "apple"), ("🍌", "banana"),
    ("🍇", "grapes"), ("🍒", "cherries"), ("🍓", "strawberry"), ("🍋", "lemon"), ("🍑", "peach"),
    ("🍐", "pear"), ("🍍", "pineapple"), ("🍉", "watermelon"), ("🍅", "tomato"), ("🥕", "carrot"),
    ("🥦", "broccoli"), ("🥑", "avocado"), ("🥔", "potato"), ("🍄", "mushroom"), ("🍞", "bread"),
    ("🧀", "cheese"), ("🍕", "pizza"), ("🍔", "hamburger"), ("🍟", "french fries"), ("🥚", "egg"),
    ("🎂", "birthday cake"), ("🍪", "cookie"), ("🍩", "doughnut"), ("🍦", "ice cream"), ("🍫", "chocolate"),
    ("🥛", "milk"), ("☀", "sun"), ("🌙", "moon"), ("☁", "cloud"), ("🌈", "rainbow"), ("⛄", "snowman"),
    ("❄", "snowflake"), ("🔥", "fire"), ("🌳", "tree"), ("🌵", "cactus"), ("🌹", "rose"),
    ("🌻", "sunflower"), ("🌷", "tulip"), ("🍁", "maple leaf"), ("🌊", "wave"), ("🏔", "mountain"),
    ("🌍", "globe"), ("🔑", "key"), ("🔨", "hammer"), ("✂", "scissors"), ("☂", "umbrella"),
    ("🎸", "guitar"), ("🎺", "trumpet"), ("🎻", "violin"), ("🥁", "drum"), ("📺", "television"),
    ("💻", "computer"), ("💡", "light bulb"), ("🕯", "candle"), ("🎈", "balloon"), ("🏆", "trophy"),
    ("🏠", "house"), ("⛺", "tent"), ("🏰", "castle"), ("🚗", "car"), ("🚌", "bus"), ("🚂", "train"),
    ("🚲", "bicycle"), ("✈", "airplane"), ("🚀", "rocket"), ("🚢", "ship"), ("⚓", "anchor"),
    ("🚁", "helicopter"), ("👓", "eyeglasses"), ("👟", "shoe"), ("🎩", "top hat"), ("👑", "crown"),
    ("💍", "ring"), ("🧦", "socks"), ("👗", "dress"), ("👕", "shirt"), ("👖", "jeans"), ("✏", "pencil"),
    ("🏀", "basketball"), ("⚽", "soccer ball"), ("🏈", "football"), ("⚾", "baseball"), ("🤖", "robot"),
    ("👻", "ghost"), ("💀", "skull"), ("🪁", "kite"), ("🧩", "puzzle piece"), ("🚦", "traffic light"),
    ("🔧", "wrench"), ("🎤", "microphone"), ("🎧", "headphones"), ("📚", "books"), ("💎", "gem"),
    ("🛏", "bed"), ("❤", "heart"), ("👍", "thumbs up"), ("✋", "hand"), ("👶", "baby"),
    # words the asterisk voice also says (see ASTERISK_WORDS)
    ("⭐", "star"), ("➕", "plus"), ("➖", "minus"), ("💲", "dollar"), ("💯", "hundred"), ("🏨", "hotel"),
    ("❓", "question mark"), ("⏸", "pause"), ("✳", "asterisk"), ("❗", "exclamation point"), ("⛳", "golf"),
]
MASS = {"bread", "cheese", "broccoli", "chocolate", "milk", "fire", "ice cream"}
PLURAL = {"grapes", "cherries", "french fries", "scissors", "eyeglasses", "socks", "jeans", "headphones", "books"}

# asterisk-core-sounds-en recordings of one real speaker (relative to /usr/share/asterisk/sounds/en),
# per concept name: the held-out real voice
ASTERISK_WORDS = {
    "star": ["digits/star"], "plus": ["letters/plus"], "minus": ["digits/minus"], "dollar": ["letters/dollar"],
    "hundred": ["digits/hundred"], "hotel": ["phonetic/h_p"], "question mark": ["letters/ascii63"],
    "pause": ["dictate/pause"], "asterisk": ["letters/asterisk"], "exclamation point": ["letters/exclaimation-point"],
    "golf": ["phonetic/g_p"],
}

# Event sounds (sound-theme-freedesktop, plus one asterisk sound effect), each with the emoji
# that pictures it. Several freedesktop files are byte-identical copies of one sound (for
# example dialog-error = dialog-warning = window-attention = window-question, power-plug =
# device-added = network-connectivity-established); each distinct sound is one concept.
FREEDESKTOP = "/usr/share/sounds/freedesktop/stereo"
ASTERISK = "/usr/share/asterisk/sounds/en"
EVENTS = [
    # name, file, emoji, what the picture shows, audio captions
    ("alarm clock ringing", f"{FREEDESKTOP}/alarm-clock-elapsed.oga", "⏰", "an alarm clock",
     ["an alarm clock ringing", "the sound of an alarm clock going off", "a loud ringing alarm"]),
    ("bell ringing", f"{FREEDESKTOP}/bell.oga", "🔔", "a bell",
     ["a bell ringing", "the sound of a small bell", "a bell chimes once"]),
    ("camera shutter", f"{FREEDESKTOP}/camera-shutter.oga", "📷", "a camera",
     ["a camera shutter clicking", "the click of a camera taking a photo", "the sound of a camera shutter"]),
    ("task complete", f"{FREEDESKTOP}/complete.oga", "✅", "a green check mark",
     ["a cheerful chime for a completed task", "a short success jingle", "the sound of something finishing successfully"]),
    ("power plugged in", f"{FREEDESKTOP}/power-plug.oga", "🔌", "an electric plug",
     ["a rising blip as a power cable is plugged in", "the sound of a device being connected", "a short rising beep"]),
    ("power unplugged", f"{FREEDESKTOP}/power-unplug.oga", "🔋", "a battery",
     ["a falling blip as the power cable is pulled out", "the sound of a laptop switching to battery", "a short falling beep"]),
    ("warning alert", f"{FREEDESKTOP}/dialog-warning.oga", "⚠", "a warning sign",
     ["a warning alert sound", "an alert beep from a dialog box", "the sound of a warning"]),
    ("information chime", f"{FREEDESKTOP}/dialog-information.oga", "ℹ", "an information symbol",
     ["a soft information chime", "a tiny click for an information notice", "the sound of a quiet notification"]),
    ("new message", f"{FREEDESKTOP}/message.oga", "✉", "an envelope",
     ["a message notification sound", "a chime for a new email", "the sound of a letter arriving"]),
    ("chat message", f"{FREEDESKTOP}/message-new-instant.oga", "💬", "a speech bubble",
     ["an instant message notification", "the sound of a new chat message", "a chat alert pop"]),
    ("phone ringing", f"{FREEDESKTOP}/phone-incoming-call.oga", "📞", "a telephone receiver",
     ["a phone ringing", "the sound of an incoming call", "a telephone ring"]),
    ("busy signal", f"{FREEDESKTOP}/phone-outgoing-busy.oga", "📵", "a crossed-out mobile phone",
     ["a telephone busy signal", "the beeping of a busy line", "the sound of an engaged phone line"]),
    ("phone calling", f"{FREEDESKTOP}/phone-outgoing-calling.oga", "📲", "a mobile phone with an arrow",
     ["a phone calling tone", "the ringback tone of an outgoing call", "the sound of dialling out"]),
    ("trash emptied", f"{FREEDESKTOP}/trash-empty.oga", "🗑", "a wastebasket",
     ["the sound of emptying the trash", "crumpling paper thrown in a bin", "a wastebasket being emptied"]),
    ("login chime", f"{FREEDESKTOP}/service-login.oga", "🔓", "an open padlock",
     ["a login chime", "the sound of signing in", "a welcoming jingle as someone logs in"]),
    ("logout chime", f"{FREEDESKTOP}/service-logout.oga", "🔒", "a locked padlock",
     ["a logout chime", "the sound of signing out", "a closing jingle as someone logs out"]),
    ("suspend error", f"{FREEDESKTOP}/suspend-error.oga", "💤", "a sleeping symbol",
     ["an error sound when the computer fails to go to sleep", "a suspend error alert", "the sound of a failed sleep mode"]),
    ("volume change", f"{FREEDESKTOP}/audio-volume-change.oga", "🔊", "a loudspeaker",
     ["a volume change blip", "the click of adjusting the volume", "a short pop from a speaker"]),
    ("monkeys screaming", f"{ASTERISK}/tt-monkeys.wav", "🐒", "a monkey",
     ["monkeys screaming", "the sound of monkeys shrieking", "a troop of noisy monkeys"]),
]

# geometric solids: a drawn picture and a sampled surface each, no sound (mini-ulip's world)
SHAPES = ["cube", "sphere", "cylinder", "cone", "pyramid", "torus"]

TINY = {"digit": ["zero", "seven"], "letter": ["a", "z"], "number": ["thirteen", "seventy"],
        "emoji": ["dog", "apple", "star"], "event": ["bell ringing", "phone ringing"], "shape": ["cube shape", "sphere shape"]}


@dataclass
class Concept:
    name: str
    kind: str
    image_captions: list[str]
    audio_captions: list[str]
    glyph: str = ""  # the text an image shows: "7", "a", "42", or the emoji
    spoken: str = ""  # what the voices say (espeak); "" for event sounds
    festival: str = ""  # what festival is given to say (its spelling of letter a differs)
    asterisk: list[str] = field(default_factory=list)  # real-voice recordings
    sound: str = ""  # the event sound file
    has_3d: bool = False

    def public(self) -> dict:
        return {"name": self.name, "kind": self.kind, "image_captions": self.image_captions, "audio_captions": self.audio_captions}


def _a(word: str) -> str:
    if word in MASS or word in PLURAL:
        return ""
    an = word[0] in "aeiou" and not word.startswith(("uni", "eu")) or word.startswith("hour")
    return "an " if an else "a "


def concepts(tiny: bool = False) -> list[Concept]:
    out: list[Concept] = []
    for d, w in enumerate(DIGIT_WORDS):
        out.append(Concept(
            w, "digit",
            [f"the digit {d}", f"a handwritten {w}", f"a picture of the number {w}", f"a printed digit {d}"],
            [f"someone saying {w}", f"the spoken word {w}", f"a voice says {w}", f"the number {w} said aloud"],
            glyph=str(d), spoken=w, festival=w, asterisk=[f"digits/{d}"], has_3d=True))
    for c in "abcdefghijklmnopqrstuvwxyz":
        out.append(Concept(
            c, "letter",
            [f"the letter {c}", f"a picture of the letter {c}", f"a printed letter {c}, capital or small", f"the character {c.upper()} or {c}"],
            [f"someone saying the letter {c}", f"the spoken letter {c}", f"a voice spells the letter {c}", f"the name of the letter {c} said aloud"],
            glyph=c, spoken=c, festival="ay" if c == "a" else c,
            asterisk=[f"letters/{c}"] + (["letters/zed"] if c == "z" else []), has_3d=True))
    for n, w in NUMBER_WORDS.items():
        out.append(Concept(
            w, "number",
            [f"the number {n}", f"the number {w} written in digits", f"a picture of the number {w}", f"the numeral {n}"],
            [f"someone saying {w}", f"the spoken number {w}", f"a voice says {w}", f"the word {w} said aloud"],
            glyph=str(n), spoken=w, festival=w, asterisk=[f"digits/{n}"]))
    for ch, w in EMOJI:
        a = _a(w)
        out.append(Concept(
            w, "emoji",
            [f"an emoji of {a}{w}", f"a picture of {a}{w}", f"the {w} emoji", f"a small colourful icon of {a}{w}"],
            [f"someone saying {w}", f"the word {w}", f"a voice says {w}", f"the spoken word {w}"],
            glyph=ch, spoken=w, festival=w, asterisk=ASTERISK_WORDS.get(w, [])))
    for name, path, ch, what, audio in EVENTS:
        out.append(Concept(
            name, "event",
            [f"a picture of {what}", f"an emoji of {what}", f"a small colourful icon of {what}"],
            list(audio), glyph=ch, sound=path))
    for name in SHAPES:  # appended last: every other concept keeps its id
        a = _a(name)
        out.append(Concept(
            f"{name} shape", "shape",
            [f"a picture of {a}{name}", f"a solid {name}", f"a drawing of a 3d {name}", f"a shaded {name} shape"],
            [], glyph=f"shape:{name}", has_3d=True))
    if tiny:
        out = [c for c in out if c.name in TINY[c.kind]]
    names = [c.name for c in out]
    assert len(set(names)) == len(names), "concept names must be unique"
    glyphs = [c.glyph for c in out]
    assert len(set(glyphs)) == len(glyphs), "two concepts share a picture"
    caps = [t for c in out for t in (*c.image_captions, *c.audio_captions)]
    assert len(set(caps)) == len(caps), "two concepts share a caption"
    return out


def emoji_unicode_names() -> dict[str, str]:
    """emoji -> its Unicode name, for SOURCES.md and checks."""
    return {ch: unicodedata.name(ch[0]) for ch, _ in EMOJI} | {e[2]: unicodedata.name(e[2][0]) for e in EVENTS}
