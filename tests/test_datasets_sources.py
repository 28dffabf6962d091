"""`tfp_flows.datasets.from_source`: a user's own rows read, checked, split and batched."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.datasets import RegisteredData, TabularData, from_source, make_dataset, read_table_chunks


def _write_csv(path, text):
    path.write_text(text)
    return str(path)


def _rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.normal(5.0, 2.0, n), rng.lognormal(0.0, 0.5, n), rng.normal(-1.0, 0.1, n)], axis=1)


def _csv_of(path, rows, header="a,b,c"):
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.17g")
    return str(path)


def test_a_csv_is_read_with_its_column_names_and_split_by_seed(tmp_path):
    rows = _rows()
    path = _csv_of(tmp_path / "m.csv", rows)
    data = from_source(path, columns="c,a", validation_fraction=0.1, test_fraction=0.2, seed=3)
    assert isinstance(data, TabularData) and data.name == "m" and data.columns == ("c", "a")
    assert (len(data.train), len(data.validation), len(data.test)) == (140, 20, 40)
    # The splits partition the rows (in the chosen columns), and the same seed gives the same split.
    together = np.concatenate([data.train, data.validation, data.test])
    np.testing.assert_array_equal(np.sort(together, axis=0), np.sort(rows[:, [2, 0]], axis=0))
    again = from_source(path, columns=["c", "a"], validation_fraction=0.1, test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.test, data.test)
    other = from_source(path, columns="c,a", validation_fraction=0.1, test_fraction=0.2, seed=4)
    assert not np.array_equal(other.test, data.test)


def test_numpy_files_arrays_dataframes_and_tf_data_give_the_same_rows(tmp_path):
    import pandas as pd

    rows = _rows(50)
    np.save(tmp_path / "r.npy", rows)
    np.savez(tmp_path / "r.npz", rows=rows)
    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    sources = {
        "npy": str(tmp_path / "r.npy"),
        "npz": str(tmp_path / "r.npz"),
        "array": rows,
        "dataset": tf.data.Dataset.from_tensor_slices(rows).batch(7),
    }
    for name, source in sources.items():
        data = from_source(source, seed=1)
        assert data.columns == ("x0", "x1", "x2"), name
        np.testing.assert_allclose(data.test, from_source(rows, seed=1).test, err_msg=name)
    data = from_source(frame, columns=["b"], seed=1)
    assert data.columns == ("b",) and data.name == "dataframe"
    np.testing.assert_allclose(data.test[:, 0], from_source(rows, seed=1).test[:, 1])


def test_a_registered_name_is_the_registry_s_data():
    data = from_source("two_moons")
    assert isinstance(data, RegisteredData) and data.info.event_shape == (2,)
    expected = next(iter(make_dataset("two_moons", "validation", 32, shuffle=False)))
    np.testing.assert_array_equal(next(iter(data.dataset("validation", 32, shuffle=False))), expected)


def test_standardization_is_the_training_split_s_mean_and_std_on_the_log_scale_for_log_columns(tmp_path):
    data = from_source(_csv_of(tmp_path / "r.csv", _rows()), columns="a,b", log_columns="b")
    stats = data.standardization()
    assert stats["columns"] == ["a", "b"] and stats["log_columns"] == ["b"]
    np.testing.assert_allclose(stats["shift"], [data.train[:, 0].mean(), np.log(data.train[:, 1]).mean()])
    np.testing.assert_allclose(stats["scale"], [data.train[:, 0].std(), np.log(data.train[:, 1]).std()])


def test_the_dataset_stream_resumes_where_an_uninterrupted_one_would_be():
    data = from_source(_rows(100), validation_fraction=0.1, test_fraction=0.1)
    batches = list(data.dataset("train", 16, repeat=True, seed=2).take(12).as_numpy_iterator())
    per_epoch = int(data.dataset("train", 16, seed=2).cardinality())
    resumed = list(data.dataset("train", 16, repeat=True, seed=2, initial_epoch=2).take(2).as_numpy_iterator())
    np.testing.assert_array_equal(resumed[0], batches[2 * per_epoch])
    assert batches[0].dtype == np.float32 and batches[0].shape == (16, 3)


def test_nan_policy_omit_drops_rows_with_non_finite_values():
    rows = _rows(100)
    rows[[3, 50], 1] = [np.nan, np.inf]
    data = from_source(rows, nan_policy="omit", validation_fraction=0.0, test_fraction=0.0)
    assert len(data.train) == 98 and np.all(np.isfinite(data.train))


def test_chunks_stream_a_csv_in_order(tmp_path):
    rows = _rows(25)
    chunks = list(read_table_chunks(_csv_of(tmp_path / "r.csv", rows), "b", chunk_rows=10))
    assert [len(chunk) for chunk, _, _ in chunks] == [10, 10, 5]
    np.testing.assert_allclose(np.concatenate([chunk for chunk, _, _ in chunks])[:, 0], rows[:, 1])


# (file contents, from_source arguments, error type, words the one-line message must hold)
BAD_SOURCES = {
    "missing": (None, {}, FileNotFoundError, ["no file or folder", "missing.csv"]),
    "empty": ("", {}, ValueError, ["bad.csv", "empty"]),
    "header_only": ("a,b\n", {}, ValueError, ["bad.csv", "no rows"]),
    "no_header": ("1,2\n3,4\n", {}, ValueError, ["bad.csv", "header row"]),
    "ragged": ("a,b\n1,2\n3,4,5\n", {}, ValueError, ["bad.csv", "line 3", "3 fields", "expected 2"]),
    "text_column": ("a,name\n1,x\n2,y\n", {}, ValueError, ["bad.csv", "'name'", "not numeric"]),
    "constant_column": ("a,b\n1,7\n2,7\n3,7\n", {}, ValueError, ["bad.csv", "'b'", "constant"]),
    "nan": ("a,b\n1,2\n2,nan\n3,5\n", {}, ValueError, ["bad.csv", "'b'", "nan", "row 1"]),
    "inf": ("a,b\n1,2\n2,inf\n3,5\n", {}, ValueError, ["bad.csv", "'b'", "inf"]),
    "missing_value": ("a,b\n1,\n2,3\n3,5\n", {}, ValueError, ["bad.csv", "'b'", "nan"]),
    "log_of_negative": ("a,b\n1,2\n2,-3\n3,5\n", {"log_columns": "b"}, ValueError, ["'b'", "<= 0"]),
    "unknown_column": ("a,b\n1,2\n2,3\n3,5\n", {"columns": "a,z"}, ValueError, ["'z'", "['a', 'b']"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_files_get_one_line_naming_the_file_and_the_column(tmp_path, case):
    text, kwargs, error, words = BAD_SOURCES[case]
    path = tmp_path / ("missing.csv" if text is None else "bad.csv")
    if text is not None:
        path.write_text(text)
    kwargs = {"validation_fraction": 0.0, "test_fraction": 0.0, **kwargs}
    with pytest.raises(error) as raised:
        from_source(str(path), **kwargs)
    message = str(raised.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if text is None else ["bad.csv"])


def test_bad_arrays_and_fractions_are_refused_naming_what_was_expected():
    with pytest.raises(ValueError, match=r"2-D array \[N, D\]"):
        from_source(np.zeros(5))
    with pytest.raises(ValueError, match="sum < 1"):
        from_source(_rows(), validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="too few to split"):
        from_source(_rows(3))
    with pytest.raises(ValueError, match="needs labels"):
        from_source(_rows()).dataset(conditional=True)
