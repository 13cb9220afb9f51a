"""The filters a task leaves behind: those raising warnings as errors are taken out; those a
library adds as a task imports it stay."""
import warnings

import pytest
from dist_worker.warning_filters import put_back_warning_filters


def test_a_tasks_error_filters_go_and_a_librarys_filters_stay():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="numpy.ndarray size changed")  # pandas's
        library_filter = warnings.filters[0]
        warnings.simplefilter("error", ResourceWarning)
        warnings.simplefilter("error")
        put_back_warning_filters()
        assert library_filter in warnings.filters
        assert not [entry for entry in warnings.filters if entry[0] == "error"]
        with pytest.warns(ResourceWarning):  # a warning again, not an exception
            warnings.warn("a connection left open", ResourceWarning, stacklevel=1)


def test_filters_a_library_added_are_left_alone_without_a_word(caplog):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="numpy.dtype size changed")
        before = list(warnings.filters)
        put_back_warning_filters()
        assert warnings.filters == before
    assert "taken out" not in caplog.text
