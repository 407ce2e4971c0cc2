#include "fleet/fleet_apply.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <fmt/core.h>

#include "util/error.h"
#include "util/unique_fd.h"

extern char** environ;

namespace xdpctl::fleet {

namespace fs = std::filesystem;

std::string find_xdpctl_binary()
{
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
        for (const fs::path& p : {self.parent_path() / "xdpctl", self.parent_path().parent_path() / "xdpctl",
                                  self.parent_path().parent_path() / "bin" / "xdpctl"})
            if (access(p.c_str(), X_OK) == 0)
                return p.string();
    return "xdpctl";  // posix_spawnp looks it up on $PATH
}

namespace {

// The temporary file: a directory only root reads (the file is the host's firewall).
struct TempFile {
    std::string dir, path;
    TempFile(const std::string& text, const std::string& name)
    {
        char tmpl[] = "/tmp/xdpd-fleet.XXXXXX";
        if (!mkdtemp(tmpl))
            fail("cannot make a temporary directory: {}", errno_str(errno));
        dir = tmpl;
        path = dir + "/" + name;
        UniqueFd fd{open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
        if (!fd)
            fail("cannot write {}: {}", path, errno_str(errno));
        for (size_t off = 0; off < text.size();) {
            ssize_t n = write(fd.get(), text.data() + off, text.size() - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                fail("cannot write {}: {}", path, errno_str(errno));
            off += size_t(n);
        }
    }
    ~TempFile()
    {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

void replace_all(std::string& s, const std::string& from, const std::string& to)
{
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

}  // namespace

ApplyOutcome apply_config_text(const std::string& xdpctl_bin, const std::string& state_dir,
                               const std::string& text, const std::string& source)
{
    TempFile file(text, "config");
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        fail("pipe: {}", errno_str(errno));
    UniqueFd rd{pipe_fds[0]}, wr{pipe_fds[1]};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
    // Not xdpd's sockets (Asio's are not close-on-exec): a child outliving xdpd holds no port.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    std::vector<std::string> args{xdpctl_bin, "--state-dir", state_dir, "--wait", "10", "apply", file.path};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, xdpctl_bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail("cannot run {}: {}", xdpctl_bin, errno_str(rc));
    wr.reset();
    std::string err;
    char buf[4096];
    for (;;) {
        ssize_t n = read(rd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        err.append(buf, size_t(n));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (!err.empty() && err.back() == '\n')
        err.pop_back();
    replace_all(err, file.path, source);
    if (err.rfind("xdpctl: ", 0) == 0)
        err.erase(0, 8);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return {ApplyOutcome::Kind::applied, err};
    // The commit stands, only its record failed (lib/state/state_record.cpp's words): in force,
    // and applying it again would not record it either.
    if (WIFEXITED(status) && WEXITSTATUS(status) == int(ExitCode::runtime) &&
        err.find("is in force, but the state directory was not updated") != std::string::npos)
        return {ApplyOutcome::Kind::applied, err};
    if (WIFEXITED(status) && WEXITSTATUS(status) == int(ExitCode::usage))
        return {ApplyOutcome::Kind::refused, err};
    if (err.empty())
        err = WIFEXITED(status) ? fmt::format("{} exited with {}", xdpctl_bin, WEXITSTATUS(status))
                                : fmt::format("{} killed by signal {}", xdpctl_bin, WTERMSIG(status));
    return {ApplyOutcome::Kind::failed, err};
}

}  // namespace xdpctl::fleet
