"""Write failures are classified by what went wrong: the machine (exit 74) or the path (exit 2)."""

import errno

import pytest

from heroforge.errors import OperationalError, UserError, write_failure


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS])
def test_the_machine_failing_is_operational(code):
    err = write_failure("cannot write x.zip", OSError(code, "it broke"))
    assert isinstance(err, OperationalError)
    assert err.exit_code == 74
    assert str(err) == "cannot write x.zip: it broke"


@pytest.mark.parametrize("code", [errno.ENOTDIR, errno.EACCES, errno.EEXIST, errno.ENAMETOOLONG])
def test_a_path_to_change_is_the_users(code):
    err = write_failure("cannot write x.zip", OSError(code, "bad path"))
    assert isinstance(err, UserError)
    assert not isinstance(err, OperationalError)
    assert err.exit_code == 2


def test_a_real_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OSError) as raised:
        (tmp_path / "file" / "sub").mkdir()
    err = write_failure("cannot create sub", raised.value)
    assert isinstance(err, UserError)
    assert str(err) == "cannot create sub: Not a directory"
