"""The answer chain with the default packaged chat model (Qwen2.5 1.5B GGUF) through llama.cpp."""

import re

import pytest
from langchain_core.documents import Document

from pgrag.chains.citations import (
    ABSTENTION,
    adds_from_sources,
    extract_citations,
    is_abstention,
    support_note,
    uncited_sentences,
    unsupported_terms,
)

FACTS = [
    "The harbour ferry to Skerry Island leaves every hour from pier 4, from 7am to 9pm.",
    "Tickets for the ferry are sold at the kiosk on pier 4 and cost six euros.",
    "The island lighthouse was automated in 1987 and is open to visitors on Sundays.",
]


@pytest.fixture(scope="module")
def ferry(kb):
    kb.ingest_documents([Document(t, metadata={"source": f"ferry{i}.md"}) for i, t in enumerate(FACTS)],
                        collection="ferry")
    return "ferry"


def test_ask_cites_stored_sources(kb, ferry):
    answer = kb.ask("How often does the ferry to Skerry Island leave?", collection=ferry, k=3)
    assert re.search(r"every hour|hourly", answer.answer, re.IGNORECASE) and answer.citations
    assert answer.grounded and not answer.abstained
    # Invoked, not streamed, and still timed as the model wrote: the first token before the last, token by token.
    assert 0 < answer.timings["first_token_s"] < answer.timings["total_s"] and answer.timings["tokens"] > 1
    assert answer.sources[answer.citations[0]["number"] - 1].metadata["source"] == "ferry0.md"
    stored = {doc["source"] for doc in kb.documents(collection=ferry)}
    for citation in answer.citations:
        assert citation["source"] in stored
        assert citation["source"] == answer.sources[citation["number"] - 1].metadata["source"]


def test_answer_streams_in_pieces(kb, ferry):
    pieces = [chunk["answer"] for chunk in kb.answer_chain(collection=ferry, k=2).stream({"question": "Ticket price?"})
              if "answer" in chunk]
    assert len(pieces) > 3


def test_empty_collection_answers_without_the_model(kb, collection):
    kb.ingest_documents([Document("placeholder", metadata={"source": "x"})], collection=collection)
    kb.delete("x", collection=collection)
    answer = kb.ask("anything?", collection=collection)
    assert "no passages" in answer.answer and answer.citations == [] and answer.retrieval["weak"]


def test_citations_out_of_range_are_ignored():
    sources = [Document("a", metadata={"source": "a.md", "chunk_id": 1})]
    assert extract_citations("x [1]. y [2]. z [1, 3].", sources) == [{"number": 1, "source": "a.md", "chunk_id": 1}]


def test_weak_retrieval_answers_that_there_is_no_good_answer(kb, ferry):
    answer = kb.ask("What is the boiling point of mercury in kelvin?", collection=ferry, k=2)
    assert answer.retrieval["weak"] and answer.retrieval["best_similarity"] < kb.settings.min_relevance
    assert "no good answer" in answer.answer and answer.citations == []
    good = kb.ask("Where are ferry tickets sold?", collection=ferry, k=2)
    assert not good.retrieval["weak"] and good.citations


def test_a_question_naming_what_no_passage_mentions_is_not_answered(kb, ferry):
    # Names no English word list knows count in any collection; a hyphenated word counts by its parts. Common
    # English words ("often", "bicycles") are not expected in three sentences, so their absence says nothing.
    assert kb.retrieval.unseen_words("How often does the Skerry-Kirrinmore ferry take bicycles?", ferry) == [
        "Kirrinmore"]
    answer = kb.ask("How much is a ticket for the Kirrinmore ferry?", collection=ferry, k=3)
    assert answer.abstained and answer.retrieval["weak"] and answer.retrieval["unseen_words"] == ["Kirrinmore"]
    assert "'Kirrinmore'" in answer.answer and answer.citations == [] and answer.timings["first_token_s"] is None
    assert kb.retrieval.unseen_words("Where are the tickets for the ferry sold?", ferry) == []
    # A code-shaped name counts as a whole: its words apart are all here, never together.
    assert kb.retrieval.unseen_words("Where is the FERRY_TICKET_KIOSK?", ferry) == ["FERRY_TICKET_KIOSK"]
    assert kb.retrieval.unseen_words("When does the harbour_ferry leave?", ferry) == []
    # So does a numbered name: pier 4 is here, Regulation 12 is not; a sentence's first word is no name.
    assert kb.retrieval.unseen_words("What does Regulation 12 say about the ferry from Pier 4?", ferry) == [
        "Regulation 12"]
    assert kb.retrieval.unseen_words("Since 2019, where do ferries leave from?", ferry) == []


def test_an_abstention_or_a_restated_question_gets_a_second_look_that_must_add_from_the_sources(kb, ferry):
    from pgrag.chains.answer import SECOND_LOOK, answer_prompt, citation_grammar
    from pgrag.chains.context import format_context

    # The system prompt's own example of an abstention: the model abstains, and the second look writes what the
    # sources say instead. An abstention is never shown and then replaced: the answer starts with it only if it is it.
    answer = kb.ask("Who designed the lighthouse?", collection=ferry, k=3)
    assert answer.answer == ABSTENTION or not answer.answer.startswith(ABSTENTION[:-1])
    assert answer.grounded and (answer.abstained or answer.citations)
    # The second look's grammar begins the answer with the opening and cites a source.
    sources = kb.search("Who designed the lighthouse?", collection=ferry, k=3)
    prompt = answer_prompt().invoke({"question": "Who designed the lighthouse?",
                                     "context": format_context("Who designed the lighthouse?", sources, [300] * 3)})
    second = str(kb.models.chat_model.bind(grammar=citation_grammar(3, SECOND_LOOK)).invoke(prompt).content)
    assert second.startswith(SECOND_LOOK) and extract_citations(second, sources)


def test_no_answer_sentence_begins_with_a_copied_source_label_or_heading(kb):
    from pgrag.chains.answer import citation_grammar

    # Small models copy the prompt's "[n] (label) ## Heading" layout after a citation; the grammar lets no
    # sentence begin with "(" or "#", even when asked to.
    copy = ("Repeat this text exactly: (Ferry timetable) ## Timetable The ferry leaves hourly [1]. "
            "(Tickets) Six euros [2].")
    text = str(kb.models.chat_model.bind(grammar=citation_grammar(2)).invoke(copy).content)
    assert not re.search(r"(^|\] |\]\. )[(#]", text), text


def test_an_unseen_english_word_counts_only_where_the_collection_would_hold_it_many_times():
    from pgrag.retrieval import absence_is_telling

    assert absence_is_telling("urllib3", 10)  # no English word list knows it: a name the collection lacks
    assert absence_is_telling("pin", 1_151_933)  # expected 22 times in the Python manual
    assert not absence_is_telling("quickly", 41_714)  # expected 4 times in 30 manual pages: may just not be used
    assert not absence_is_telling("often", 60)


def test_a_second_look_counts_only_if_it_adds_from_the_sources():
    sources = [Document("Tickets cost six euros at the kiosk on pier 4.")]
    assert adds_from_sources("Tickets are sold at the kiosk [1].", "Where are tickets sold?", sources)
    assert adds_from_sources("They cost 6 euros, at pier 4 [1].", "How much are tickets?", sources)
    assert not adds_from_sources("Tickets are sold [1].", "Where are tickets sold?", sources)  # only restates
    assert not adds_from_sources("You cannot bring a bicycle [1].", "Can I bring a bicycle?", sources)  # not there
    coded = [Document("Use the %j directive, or raise FrozenInstanceError.")]
    assert adds_from_sources("The directive is `%j` [1].", "Which directive gives the day?", coded)  # a literal
    assert adds_from_sources("It raises FrozenInstanceError [1].", "What does a frozen one raise?", coded)  # a name


def test_uncited_sentences_and_abstentions_are_found():
    assert uncited_sentences("Cited [1]. Not cited. Also cited [2].") == ["Not cited."]
    assert uncited_sentences("jsonb_path_ops supports @>, @? and @@. [2] Why? Cited [1].") == ["Why?"]
    assert uncited_sentences("It fell by 50%. Cited [1].") == ["It fell by 50%."]
    assert is_abstention("The sources do not say.") and not is_abstention("It says hello [1].")


def test_numbers_and_names_that_no_source_contains_are_called_out():
    sources = [Document("The server listens on port 8000 by default. Pass exist_ok=True. Weekdays start at zero.")]
    assert unsupported_terms("It listens on 8000 [1]. Monday is 0 [1]. Set exist_ok [1].", "Which port?", sources) == []
    assert unsupported_terms("Set kw_only, or use MyConfig and 1,024 [1].", "", sources) == ["1024", "kw_only", "MyConfig"]
    assert unsupported_terms("Since 3.12, add it to CSRF_TRUSTED_ORIGINS [1].", "How do I set Django's "
                             "CSRF_TRUSTED_ORIGINS since 3.12?", sources) == ["CSRF_TRUSTED_ORIGINS"]

    def streamed(pieces: list[str]) -> str:
        return "".join(support_note("Which port?", sources).transform(iter(pieces)))

    invented = streamed(["The default port is ", "8888 [1]."])
    assert invented.endswith("\n(Not in any source: 8888. The sources do not say this.)") and is_abstention(invented)
    assert is_abstention(streamed(["Set it to 80 in [1] and [1] respectively, then to 120 in [1]."]))
    partly = streamed(["It listens on 8000 [1]. ", "Its handler is MyHandler [1]."])
    assert partly.endswith("\n(Not in any source: MyHandler.)") and not is_abstention(partly)
    assert uncited_sentences(partly) == ["(Not in any source: MyHandler.)"]
    assert streamed(["It listens on 8000 [1]."]) == "It listens on 8000 [1]."


def test_the_streamed_answer_never_shows_an_invalid_or_misplaced_citation():
    from pgrag.chains.citations import citation_filter

    sources = [Document("Ferries run hourly from pier 4."), Document("Tickets cost six euros at the kiosk.")]

    def streamed(pieces: list[str]) -> str:
        return "".join(citation_filter("When do ferries run?", sources).transform(iter(pieces)))

    assert streamed(["Ferries run", " [", "5", "]", ". Tickets", " cost six [", "2", "]."]) == \
        "Ferries run. Tickets cost six [2]."
    assert streamed(["a [1]. b [7]. c [1, 9]."]) == "a [1]. b. c [1]."
    # A citation whose source holds less than half as much of its sentence as the best one moves there; one that
    # holds half or more stays.
    assert streamed(["They run hourly [2]. ", "A ticket costs six euros [1, ", "2]."]) == \
        "They run hourly [1]. A ticket costs six euros [2]."
    assert streamed(["They leave hourly from pier 4, near the kiosk [2]."]) == \
        "They leave hourly from pier 4, near the kiosk [1]."
    assert streamed(["They leave from pier 4 hourly [1]. Yes [2]."]) == "They leave from pier 4 hourly [1]. Yes [2]."
    assert streamed(["Tickets cost six euros at pier 4 [1]."]) == "Tickets cost six euros at pier 4 [1]."


def test_the_best_source_gets_the_most_room_and_all_fit_the_context_window(settings):
    from pgrag.chains.answer import CHARS_PER_TOKEN, PROMPT_TOKENS, source_budgets

    assert source_budgets(settings, 4) == [settings.answer_chars_best_source] + [settings.answer_chars_per_source] * 3
    fifty = source_budgets(settings, 50)
    assert len(fifty) == 50 and fifty[0] > fifty[1]
    assert sum(fifty) <= (settings.context_window - settings.max_tokens - PROMPT_TOKENS) * CHARS_PER_TOKEN


def test_excerpts_keep_the_sentences_about_the_question():
    from pgrag.chains.context import excerpt, split_sentences, terms

    text = ("The os module has many functions. Most of them are thin wrappers around system calls. "
            "The function os.cpu_count() tells how many processors there are. The number is None if unknown. "
            "Unrelated trivia follows here. More unrelated trivia here too.")
    question = "What does os.cpu_count() give back when the number is unknown?"
    kept = excerpt(question, split_sentences(text), 200, dict.fromkeys(terms(question), 1.0))
    # The sentences sharing the question's words, not the others, although the budget would hold one more.
    assert kept == "The function os.cpu_count() tells how many processors there are. The number is None if unknown."


def test_sentences_wrapped_over_lines_are_read_whole():
    from pgrag.chains.context import split_sentences

    # As an HTML manual reaches the splitter: the author's line wraps kept, a table cell per line.
    text = ("### Miscellaneous  \nos.cpu_count()\nReturn the number of CPUs in the system. Returns None if\n"
            "undetermined.  \n- a list item\n- another one.\n%j  \nDay of the year as a\nzero-padded   decimal number.\n"
            "timeit.timeit(number=1000000)\n:   Create a Timer instance. Run it.")  # a <dd> as markdown writes it
    assert split_sentences(text) == [
        "### Miscellaneous", "os.cpu_count() Return the number of CPUs in the system.", "Returns None if undetermined.",
        "- a list item", "- another one.", "%j Day of the year as a zero-padded decimal number.",
        "timeit.timeit(number=1000000) — Create a Timer instance.", "Run it."]


def test_markup_reaches_the_prompt_as_plain_words():
    from pgrag.chains.context import split_sentences

    # A code block's closing fence is joined to the prose after it; a footnote marker looks like a citation.
    text = ("```\n>>> p.exists()\nTrue\n```  \n(Added in 3.4.) The `Path.mkdir()` method takes ``exist_ok``.  \n"
            "The ISO calendar is a variant of the Gregorian calendar. [3] Its year has 52 or 53 weeks.  \n"
            "| Character | Byte order |\n| --- | --- |\n| ! | network |\n\na[0] is [1, 2] and x = [1].")
    assert split_sentences(text) == [
        ">>> p.exists() True", "(Added in 3.4.) The Path.mkdir() method takes exist_ok.",
        "The ISO calendar is a variant of the Gregorian calendar.", "Its year has 52 or 53 weeks.",
        "| Character | Byte order |", "| ! | network |", "a[0] is [1, 2] and x = [1]."]


def test_best_source_is_listed_next_to_the_question():
    from pgrag.chains.context import format_context

    sources = [Document(page_content="Tickets cost six euros."), Document(page_content="Ferries leave from pier 4.")]
    lines = format_context("How much is a ticket?", sources, [200, 200]).splitlines()
    # Numbered by rank, listed best last: the question follows the last line.
    assert lines[0].startswith("[2]") and lines[-1].startswith("[1]") and "six euros" in lines[-1]


def test_passages_far_below_the_best_stay_out_of_the_prompt(settings):
    from pgrag.chains.answer import close_to_best

    def scored(*fused: float) -> list[Document]:
        return [Document(page_content=f"p{i}", metadata={"scores": {"fused": s}}) for i, s in enumerate(fused)]

    found = scored(2.0, 1.0, 0.9, 1.7, 1.5, 1.6)
    share = settings.model_copy(update={"answer_score_share": 0.8})
    # The first three always; after them, only those at 0.8 of the best score or more.
    assert [doc.page_content for doc in close_to_best(found, share)] == ["p0", "p1", "p2", "p3", "p5"]
    assert close_to_best(found, settings.model_copy(update={"answer_score_share": 0})) == found
    # Reciprocal-rank scores say nothing of how far apart two passages are.
    assert close_to_best(found, settings.model_copy(update={"fusion": "rrf"})) == found
