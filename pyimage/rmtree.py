"""rmtree without recursion and with a bounded number of open fds.

shutil.rmtree recurses once per directory level (RecursionError below ~1000 levels,
which a layer of 1000 nested directories reaches) and os.fwalk does too; the bundle
cleanup, `unbundle`, `gc` and the applier's replacement of a directory all delete
trees an image chose.  Here a directory deeper than MAX_DEPTH below the top is moved
up into the top directory (a rename, same filesystem) and emptied from there later,
so the walk never holds more than MAX_DEPTH fds and never follows a symlink (every
call is relative to a directory fd, with O_NOFOLLOW)."""
import errno
import os
import stat

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 64


def rmtree(path, dir_fd=None, ignore_errors=False):
    """remove path (relative to dir_fd if given) and everything below it"""
    try:
        _rmtree(path, dir_fd)
    except OSError:
        if not ignore_errors:
            raise


def _rmtree(path, dir_fd):
    if dir_fd is None:
        parent, base = os.path.split(os.path.abspath(path))
        pfd = os.open(parent, O_DIR)
    else:
        base, pfd = path, dir_fd
    try:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(base, dir_fd=pfd)
            return
        top = os.open(base, O_DIR, dir_fd=pfd)
        try:
            _empty(top)
        finally:
            os.close(top)
        os.rmdir(base, dir_fd=pfd)
    finally:
        if dir_fd is None:
            os.close(pfd)


def _empty(top):
    """remove everything inside the directory open at fd `top`"""
    moved = 0
    # frames: [fd, names, next index, name in parent]; the top's names grow as deep
    # directories are moved up into it
    frames = [[top, os.listdir(top), 0, None]]
    try:
        while frames:
            f = frames[-1]
            fd, names, i = f[0], f[1], f[2]
            if i == len(names):
                frames.pop()
                if frames:
                    os.close(fd)
                    _rmdir(f[3], frames[-1][0])
                continue
            f[2] = i + 1
            name = names[i]
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                _unlink(name, fd)
                continue
            if len(frames) >= MAX_DEPTH:
                while True:
                    moved += 1
                    new = ".rmtree-%d" % moved
                    try:
                        os.stat(new, dir_fd=top, follow_symlinks=False)
                    except FileNotFoundError:
                        break
                try:
                    os.rename(name, new, src_dir_fd=fd, dst_dir_fd=top)
                    frames[0][1].append(new)
                    continue
                except OSError as e:
                    if e.errno != errno.EXDEV:      # a mount point in between: descend
                        raise
            cfd = os.open(name, O_DIR, dir_fd=fd)
            frames.append([cfd, os.listdir(cfd), 0, name])
    finally:
        for f in frames[1:]:
            os.close(f[0])


def _unlink(name, fd):
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass


def _rmdir(name, fd):
    try:
        os.rmdir(name, dir_fd=fd)
    except FileNotFoundError:
        pass
