#include "eval/tasks/word_lists.h"

namespace vortex::eval {

namespace {

const std::string_view kNouns[] = {
    "apple",    "anchor",     "arrow",    "badge",    "bakery",   "balcony", "banana",
    "banner",   "barrel",     "basket",   "beacon",   "beard",    "bell",    "bench",
    "berry",    "bicycle",    "blanket",  "boat",     "bonnet",   "book",    "bottle",
    "boulder",  "bowl",       "box",      "bracelet", "branch",   "bread",   "brick",
    "bridge",   "broom",      "bucket",   "bugle",    "bundle",   "butter",  "button",
    "cabin",    "cable",      "cactus",   "cake",     "camel",    "camera",  "candle",
    "canoe",    "canyon",     "carpet",   "carrot",   "castle",   "cattle",  "cave",
    "cedar",    "cellar",     "chair",    "chalk",    "channel",  "cherry",  "chest",
    "chimney",  "circle",     "cliff",    "clock",    "cloud",    "coast",   "coat",
    "coffee",   "coin",       "comet",    "compass",  "cookie",   "copper",  "coral",
    "cotton",   "cottage",    "county",   "cradle",   "crane",    "crater",  "crayon",
    "crown",    "crystal",    "cup",      "curtain",  "cushion",  "daisy",   "desert",
    "desk",     "diamond",    "dinner",   "dolphin",  "donkey",   "door",    "dragon",
    "drawer",   "dream",      "drum",     "eagle",    "earth",    "echo",    "elbow",
    "engine",   "envelope",   "fabric",   "falcon",   "feather",  "fence",   "fern",
    "ferry",    "fiddle",     "field",    "finger",   "fire",     "flag",    "flame",
    "flute",    "forest",     "fossil",   "fountain", "fox",      "frame",   "frost",
    "garden",   "garlic",     "gate",     "gem",      "ginger",   "glacier", "glass",
    "glove",    "goat",       "gold",     "grape",    "grass",    "gravel",  "guitar",
    "hammer",   "harbor",     "harp",     "hat",      "hawk",     "hedge",   "helmet",
    "hill",     "hive",       "honey",    "hook",     "horizon",  "horse",   "island",
    "ivory",    "jacket",     "jar",      "jelly",    "jewel",    "journal", "kettle",
    "key",      "kitten",     "kite",     "knife",    "ladder",   "lake",    "lamp",
    "lantern",  "lava",       "leaf",     "lemon",    "letter",   "library", "lily",
    "lion",     "lizard",     "lobster",  "locket",   "magnet",   "mango",   "maple",
    "marble",   "market",     "meadow",   "melon",    "mirror",   "mitten",  "monkey",
    "moon",     "mountain",   "mushroom", "needle",   "nest",     "night",   "notebook",
    "nugget",   "oak",        "oasis",    "ocean",    "olive",    "onion",   "orange",
    "orchard",  "otter",      "owl",      "paddle",   "palace",   "panda",   "paper",
    "parrot",   "pasta",      "peach",    "peanut",   "pearl",    "pebble",  "pencil",
    "pepper",   "piano",      "pickle",   "pillow",   "pine",     "planet",  "plate",
    "plum",     "pocket",     "pond",     "poppy",    "potato",   "puzzle",  "pyramid",
    "quarry",   "quill",      "rabbit",   "radio",    "raft",     "rain",    "rainbow",
    "raven",    "reef",       "ribbon",   "rice",     "river",    "robin",   "rocket",
    "rose",     "ruby",       "saddle",   "sail",     "salmon",   "sand",    "satchel",
    "scarf",    "scroll",     "seed",     "shadow",   "shell",    "shelf",   "ship",
    "shovel",   "silver",     "sketch",   "sled",     "slipper",  "snail",   "snow",
    "soap",     "sock",       "sofa",     "spider",   "spoon",    "spring",  "squirrel",
    "stable",   "star",       "statue",   "stone",    "storm",    "stove",   "straw",
    "stream",   "street",     "sugar",    "summit",   "sun",      "swan",    "sword",
    "table",    "tablet",     "teapot",   "temple",   "tent",     "thimble", "thread",
    "throne",   "thunder",    "ticket",   "tiger",    "timber",   "toast",   "tomato",
    "tower",    "towel",      "train",    "tree",     "trumpet",  "tulip",   "tunnel",
    "turtle",   "umbrella",   "valley",   "vase",     "village",  "vine",    "violin",
    "volcano",  "wagon",      "wallet",   "walnut",   "wand",     "water",   "wave",
    "whale",    "wheat",      "wheel",    "whistle",  "willow",   "window",  "wing",
    "winter",   "wizard",     "wolf",     "wool",     "yarn",     "zebra",   "acorn",
    "album",    "alley",      "attic",    "avenue",   "bamboo",   "barn",    "bay",
    "beetle",   "blossom",    "bonfire",  "brook",    "buffalo",  "cabbage", "canal",
    "carriage", "cathedral",  "ceiling",  "cereal",   "chapel",   "cheese",  "chestnut",
    "cinnamon", "clover",     "cobra",    "cocoa",    "collar",   "cricket", "cucumber",
    "dagger",   "dune",       "emerald",  "falls",    "festival", "fig",     "firefly",
    "fjord",    "flannel",    "forge",    "galaxy",   "gazebo",   "geyser",  "goblet",
    "gondola",  "gorilla",    "granite",  "gull",     "hamlet",   "hazel",   "heron",
    "iceberg",  "igloo",      "jasmine",  "jungle",   "kayak",    "kiln",    "lagoon",
    "lantana",  "lighthouse", "lilac",    "linen",    "llama",    "loom",    "lotus",
    "lynx",     "mantle",     "marsh",    "meteor",   "mill",     "minnow",  "moose",
    "moss",     "mosaic",     "mural",    "nectar",   "nutmeg",   "octopus", "orchid",
    "pagoda",   "parcel",     "pasture",  "pavilion", "pelican",  "pigeon",  "plaza",
    "pumpkin",  "quilt",      "radish",   "raisin",   "rapids",   "ridge",   "saffron",
    "sapphire", "sardine",    "shrine",   "sparrow",  "spruce",   "steeple", "sundial",
    "tavern",   "thistle",    "tide",     "topaz",    "trellis",  "trout",   "tundra",
    "turnip",   "vessel",     "vineyard", "walrus",   "warbler",  "wharf",   "wren",
    "yacht",
};

const std::string_view kAdjectives[] = {
    "able",     "ancient", "angry",    "arctic",    "autumn",   "bold",     "brave",
    "breezy",   "bright",  "brisk",    "broad",     "calm",     "careful",  "charming",
    "cheerful", "chilly",  "clever",   "cloudy",    "colorful", "cozy",     "crisp",
    "curious",  "dainty",  "damp",     "dazzling",  "deep",     "delicate", "dusty",
    "eager",    "early",   "earnest",  "elegant",   "empty",    "endless",  "fancy",
    "faint",    "famous",  "fearless", "fierce",    "fluffy",   "foggy",    "fond",
    "fragrant", "frozen",  "gentle",   "giant",     "gleaming", "glossy",   "golden",
    "graceful", "grand",   "grateful", "green",     "hazy",     "heavy",    "hidden",
    "hollow",   "honest",  "humble",   "hungry",    "icy",      "idle",     "jolly",
    "joyful",   "keen",    "kind",     "lazy",      "little",   "lively",   "lonely",
    "loud",     "lucky",   "lush",     "magic",     "mellow",   "merry",    "mighty",
    "misty",    "modest",  "muddy",    "narrow",    "neat",     "nimble",   "noble",
    "odd",      "patient", "peaceful", "plain",     "playful",  "polite",   "proud",
    "purple",   "quaint",  "quick",    "quiet",     "rapid",    "rare",     "rocky",
    "rosy",     "rough",   "round",    "royal",     "rusty",    "sandy",    "scarlet",
    "secret",   "serene",  "shady",    "shallow",   "shiny",    "silent",   "silky",
    "simple",   "sleepy",  "slender",  "slow",      "small",    "smooth",   "snowy",
    "soft",     "solemn",  "sour",     "sparkling", "spicy",    "splendid", "steady",
    "stormy",   "striped", "strong",   "sturdy",    "sunny",    "swift",    "tall",
    "tame",     "tender",  "thick",    "tidy",      "tiny",     "tranquil", "twisted",
    "vast",     "velvet",  "vivid",    "wandering", "warm",     "wary",     "wild",
    "windy",    "wise",    "witty",    "wooden",    "worthy",   "young",    "zealous",
};

const std::string_view kVerbsPast[] = {
    "admired", "borrowed", "built",      "carried", "chased",   "cleaned",  "collected",
    "covered", "crossed",  "discovered", "drew",    "explored", "fixed",    "followed",
    "found",   "gathered", "guarded",    "helped",  "hid",      "lifted",   "listened",
    "marked",  "measured", "moved",      "noticed", "opened",   "painted",  "passed",
    "picked",  "planted",  "pulled",     "pushed",  "reached",  "repaired", "rescued",
    "sailed",  "saw",      "searched",   "shared",  "showed",   "sketched", "sorted",
    "spotted", "studied",  "visited",    "washed",  "watched",  "weighed",  "wrapped",
};

const std::string_view kPlaces[] = {
    "village",   "market", "harbor",    "valley",  "forest", "garden",     "library",
    "castle",    "meadow", "station",   "bakery",  "museum", "orchard",    "kitchen",
    "workshop",  "cellar", "courtyard", "square",  "tower",  "island",     "hillside",
    "riverbank", "school", "temple",    "cottage", "barn",   "lighthouse", "canyon",
};

}  // namespace

std::span<const std::string_view> nouns() {
  return kNouns;
}
std::span<const std::string_view> adjectives() {
  return kAdjectives;
}
std::span<const std::string_view> verbs_past() {
  return kVerbsPast;
}
std::span<const std::string_view> places() {
  return kPlaces;
}

}  // namespace vortex::eval
