"""The mutation list (test/mutation_check.py) stays runnable: a declaration whose bug can
no longer be planted, because the code it edits has changed, is found by the suite when
the code changes, not months later by whoever runs the slow mutation check."""
import mutation_check


def test_every_old_snippet_occurs_once_in_its_file():
    assert mutation_check.stale_snippets(mutation_check.MUTATIONS) == []


def test_every_named_test_file_exists():
    missing = [(m.name, test) for m in mutation_check.MUTATIONS for test in m.tests
               if not (mutation_check.REPO / test.split("::")[0]).is_file()]
    assert missing == []
