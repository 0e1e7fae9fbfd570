"""A small corpus with planted passages, written to disk by the tests."""

DISTRACTORS = [
    "The city council approved a new budget for road maintenance and public parks this spring.",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "The stock market closed higher after the central bank kept interest rates unchanged.",
    "Volcanic eruptions release ash and sulfur dioxide that can cool the climate for several years.",
    "A balanced diet includes vegetables, whole grains, lean proteins and healthy fats.",
    "The orchestra rehearsed the symphony for weeks before the opening night performance.",
    "Rust's ownership model prevents data races at compile time without a garbage collector.",
    "Glaciers carve U-shaped valleys as they advance and retreat over thousands of years.",
    "The museum exhibition features ceramics from the Ming dynasty and early Qing period.",
    "Marathon runners often carbohydrate-load in the days before a race to maximise glycogen.",
    "The bridge was closed for inspection after engineers found cracks in the steel girders.",
    "Honeybees communicate the location of flowers to the hive through a waggle dance.",
    "The new smartphone features a larger battery and a faster processor than last year's model.",
    "Medieval castles were built with thick stone walls, moats and narrow arrow slits.",
    "Compound interest grows savings faster because interest is earned on previous interest.",
    "The football team won the championship after a penalty shootout in the final match.",
    "Coral reefs are threatened by ocean warming, which causes the corals to expel their algae.",
    "A good night's sleep improves memory consolidation and concentration the next day.",
    "The train timetable changes in December, adding late services on weekends.",
    "Shakespeare's plays are still performed around the world four centuries after his death.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Solar panels convert sunlight directly into electricity using semiconductor cells.",
    "The library extended its opening hours during the examination period for students.",
    "Wolves live in packs with a complex social hierarchy led by a breeding pair.",
    "The airline cancelled several flights because of a strike by air traffic controllers.",
    "Quantum computers use qubits that can represent superpositions of zero and one.",
    "The garden needs watering twice a week during the dry summer months.",
    "Ancient Egyptians built the pyramids as monumental tombs for their pharaohs.",
    "Electric cars have fewer moving parts than petrol cars and need less maintenance.",
    "The hospital opened a new wing dedicated to paediatric care and research.",
]

# Paraphrase: no content word in common with the question below, so only the dense leg can find it.
PARAPHRASE_PASSAGE = "A feline was dozing on the rug beside the fireplace all afternoon."
PARAPHRASE_QUERY = "cat sleeping on a mat"

# Rare exact term: an identifier that carries no meaning an embedding model can use.
RARE_TERM_PASSAGE = "Maintenance log: replace the gasket on unit QX-4471 when the pressure drops below spec."
RARE_TERM_QUERY = "QX-4471"
