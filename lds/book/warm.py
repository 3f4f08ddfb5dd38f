"""Warm kernels: every chapter's kernel forked from one process that has already imported the libraries.

A chapter's kernel spends its first seconds importing torch, diffusers, transformers and matplotlib, and a CUDA
build of torch alone leaves about 0.3 GB of memory in every process that imports it. When the runner executes
several chapters, it starts one *warm* server (``python -m lds.book.warm serve SOCKET``) that imports them once;
each chapter's kernel is then a fork of that server (Linux's copy-on-write: the imported pages are shared
until a kernel writes to them), started in a fraction of a second.

Each chapter still gets a kernel of its own, with its own globals, random state and working folder, that
papermill and jupyter_client drive as usual: the kernel command that jupyter_client launches is a small
*attach* process (``python -m lds.book.warm attach SOCKET ...``) that hands its standard streams, working folder
and environment to the server, which forks the kernel with them; the attach process forwards signals
(interrupts) to the kernel and exits with its exit status, and the server kills a kernel whose attach process
has gone. A fresh kernel and a warm one give the same notebook (``tests/test_runner.py`` compares them).

Linux only (``os.fork`` after importing torch is safe there as long as no thread has started, which the server
checks); elsewhere, or with ``LDS_WARM_KERNELS=0``, the runner starts ordinary kernels.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile

# What the server imports before it forks: what every chapter imports first (measured: 5-10 s a kernel on
# one core), nothing that starts a thread or opens a socket. Not pyplot or the inline backend: importing the
# backend is what hooks it into the kernel's shell (matplotlib_inline), so each kernel imports it itself.
PRELOAD = (
    "numpy", "torch", "transformers", "diffusers", "matplotlib", "matplotlib.figure", "matplotlib.axes",
    "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "lds.pipeline.loading", "lds.pipeline.sampling", "lds.data.corpus", "lds.models.clip", "lds.measures", "lds.pipeline.attention", "lds.pipeline.guidance",
    "lds.book.record",
)
# diffusers and transformers import their classes lazily; a chapter's first use would import them in every
# kernel: these are the ones the chapters use
PRELOAD_NAMES = {
    "diffusers": ("StableDiffusionPipeline", "AutoencoderKL", "UNet2DConditionModel", "DDIMScheduler",
                  "DDPMScheduler", "PNDMScheduler"),
    "transformers": ("CLIPModel", "CLIPTextModel", "CLIPTokenizer", "CLIPTokenizerFast", "CLIPConfig"),
}
# ipykernel sets this for a fresh kernel before matplotlib is imported; the server must import matplotlib under
# the same backend, or figures would not appear in the executed notebooks
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def available() -> bool:
    """Whether warm kernels can be used here: Linux, and not switched off with ``LDS_WARM_KERNELS=0``."""
    return sys.platform.startswith("linux") and os.environ.get("LDS_WARM_KERNELS", "1") != "0"


class WarmServer:
    """The warm server as a context manager; :attr:`manager_class` is the kernel manager papermill uses.

    The server is a child of the process that starts it and ends with it (it exits when its standard input
    closes). Start it after the environment that the kernels should have is set: libraries read some variables
    (``HF_HUB_OFFLINE``, thread counts) when they are imported.
    """

    def __init__(self, startup_timeout: float = 180.0):
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._dir = None
        self.socket_path: str | None = None
        self.manager_class = None

    def __enter__(self) -> "WarmServer":
        self._dir = tempfile.TemporaryDirectory(prefix="lds-warm-")
        self.socket_path = os.path.join(self._dir.name, "server.sock")
        env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", INLINE_BACKEND)}
        self.proc = subprocess.Popen([sys.executable, "-m", "lds.book.warm", "serve", self.socket_path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], self.startup_timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if line != "ready":
            self.close()
            raise RuntimeError(f"the warm kernel server did not start ({line or 'no answer'}); "
                               "set LDS_WARM_KERNELS=0 to start ordinary kernels")
        self.manager_class = manager_class(self.socket_path)
        return self

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # the server exits (killing any kernel left) when its input closes
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __exit__(self, *exc) -> None:
        self.close()


def manager_class(socket_path: str):
    """A jupyter_client kernel manager whose kernels are forks of the warm server at ``socket_path``."""
    from jupyter_client.manager import AsyncKernelManager

    class WarmKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            # [python, -m, ipykernel_launcher, -f, FILE, ...]: the kernel's own arguments follow the module
            if "-m" in cmd and cmd[cmd.index("-m") + 1] in ("ipykernel_launcher", "ipykernel"):
                args = cmd[cmd.index("-m") + 2:]
                return [sys.executable, "-m", "lds.book.warm", "attach", socket_path, *args]
            return cmd  # not an IPython kernel: started as usual

    WarmKernelManager.__qualname__ = WarmKernelManager.__name__
    return WarmKernelManager


def trim_after_each_cell() -> None:
    """In a kernel: hand the memory a cell freed back to the system when the cell ends (glibc's ``malloc_trim``).

    glibc keeps freed memory for reuse, so a kernel's resident size stays near the largest cell's peak for the
    rest of the chapter; trimmed, it falls back (measured on chapter 2: 150 MB less between cells, 120 MB
    less at its peak). A few milliseconds a cell. Nothing happens where the C library is not glibc. The runner
    installs it in every chapter's kernel (:data:`KERNEL_EXEC_LINE`); it prints nothing and defines no name."""
    import ctypes

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", lambda *_: trim(0))


# The kernel argument that installs it (run at start-up, outside the notebook's cells and history)
KERNEL_EXEC_LINE = "--IPKernelApp.exec_lines=['__import__(\"lds.book.warm\").book.warm.trim_after_each_cell()']"


# ---------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------

def _preload() -> None:
    import importlib

    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    for name in PRELOAD:
        importlib.import_module(name)
    for module, names in PRELOAD_NAMES.items():
        mod = importlib.import_module(module)
        for n in names:
            getattr(mod, n)


def serve(path: str) -> int:
    import gc
    import threading

    _preload()
    # Move every object imported so far out of the collector's reach: a collection in a kernel would
    # otherwise write to each object's header and so copy every page of them (Instagram's gc.freeze)
    gc.collect()
    gc.freeze()
    if threading.active_count() > 1:
        print(f"threads started while importing: {[t.name for t in threading.enumerate()]}", flush=True)
        return 3
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(16)
    kernels: dict[socket.socket, int] = {}  # attach connection -> kernel pid
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stdin = sys.stdin.fileno()
    try:
        while True:
            ready, _, _ = select.select([server, stdin, *kernels], [], [], 0.2)
            if stdin in ready and not os.read(stdin, 4096):
                return 0  # the runner has gone or is done
            if server in ready:
                conn, _ = server.accept()
                kernels[conn] = _fork_kernel(conn, server, kernels)
            for conn in [c for c in ready if c in kernels]:
                try:
                    gone = not conn.recv(16)
                except OSError:
                    gone = True
                if gone:  # the attach process was killed: so is its kernel
                    _kill(kernels[conn])
            _reap(kernels)
    finally:
        for conn, pid in kernels.items():
            _kill(pid)
            conn.close()
        server.close()


def _fork_kernel(conn: socket.socket, server: socket.socket, kernels: dict) -> int:
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(msg)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the kernel
        server.close()
        for other in kernels:
            other.close()
        conn.close()
        _run_kernel(request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    conn.send(json.dumps({"pid": pid}).encode())
    return pid


def _run_kernel(request: dict, fds: list[int]) -> None:
    code = 1
    try:
        os.setsid()  # its own session, as jupyter_client gives a kernel it starts
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(request["argv"])
        _as_in_a_fresh_kernel()
        app.start()
        code = 0
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _as_in_a_fresh_kernel() -> None:
    """Redo the choices that libraries made at import time by asking whether they run in a Jupyter kernel.

    tqdm.auto picks its notebook progress bar only when imported inside a kernel; transformers and diffusers
    imported it in the server, where there was none, so their bars would be text on stderr instead of what
    a fresh kernel shows. Reloading the two tqdm modules redoes the choice (the libraries look the class up
    in ``tqdm.auto`` each time they draw a bar)."""
    import importlib

    import tqdm.auto
    import tqdm.autonotebook

    importlib.reload(tqdm.autonotebook)
    importlib.reload(tqdm.auto)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(kernels: dict) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for conn, kpid in list(kernels.items()):
            if kpid == pid:
                try:
                    conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                except OSError:
                    pass
                conn.close()
                del kernels[conn]


# ---------------------------------------------------------------------------------------------------------
# The attach process: what jupyter_client starts as "the kernel"
# ---------------------------------------------------------------------------------------------------------

def attach(path: str, argv: list[str]) -> int:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(path)
    except OSError as err:
        print(f"lds warm kernel: cannot reach the server at {path}: {err}", file=sys.stderr)
        return 1
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    reply = conn.recv(4096)
    if not reply:
        print("lds warm kernel: the server closed the connection", file=sys.stderr)
        return 1
    pid = json.loads(reply)["pid"]

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    while True:
        msg = conn.recv(4096)  # interrupted system calls are retried (PEP 475) after forwarding a signal
        if not msg:
            return 1  # the server went away
        status = json.loads(msg)
        if "exit" in status:
            return int(status["exit"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "serve":
        return serve(argv[1])
    if len(argv) >= 2 and argv[0] == "attach":
        return attach(argv[1], argv[2:])
    print("usage: python -m lds.book.warm serve SOCKET | attach SOCKET KERNEL-ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
