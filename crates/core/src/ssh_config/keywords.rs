//! The keywords of ssh_config(5) (OpenSSH 9.2) and how each one's arguments
//! are read. Aliases map to the name `ssh -G` prints.

/// How a keyword's arguments are read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Host,
    Match,
    Include,
    /// yes/no/true/false, stored as `ssh -G` prints it (yes/no).
    Flag,
    /// One of a fixed set of words; each maps to the spelling ssh prints.
    Choice(&'static [(&'static str, &'static str)]),
    /// A time interval ("1h30m"), stored in seconds. "none" is accepted
    /// and leaves the keyword unset, so a later line may still set it.
    Time,
    /// A non-negative integer.
    Int,
    /// Exactly one argument, stored as given.
    Str,
    /// One to `n` arguments, stored as given.
    Args(usize),
    /// Port number or service name.
    Port,
    /// The rest of the line, unsplit (ProxyCommand, LocalCommand, …).
    Command,
    ProxyCommand,
    ProxyJump,
    /// A list whose first occurrence wins as a whole; "none" must be alone.
    List,
    /// An algorithm list with `+`/`-`/`^` modifiers.
    Algorithms(AlgClass),
    IdentityFile,
    CertificateFile,
    LocalForward,
    RemoteForward,
    DynamicForward,
    SendEnv,
    SetEnv,
    ForwardAgent,
    IdentityAgent,
    /// Accepted and ignored (deprecated or unsupported in ssh).
    Ignored,
}

/// Which default/supported table an algorithm keyword uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlgClass {
    Cipher,
    Mac,
    Kex,
    /// Host key and public key algorithms (wildcards allowed in the list).
    Key,
    /// CA signature algorithms.
    Signature,
}

const YES_NO_ASK: &[(&str, &str)] = &[
    ("true", "true"),
    ("false", "false"),
    ("yes", "true"),
    ("no", "false"),
    ("ask", "ask"),
];
const STRICT_HOST_KEY: &[(&str, &str)] = &[
    ("true", "true"),
    ("false", "false"),
    ("yes", "true"),
    ("no", "false"),
    ("ask", "ask"),
    ("off", "false"),
    ("accept-new", "accept-new"),
];
const ADDRESS_FAMILY: &[(&str, &str)] = &[("inet", "inet"), ("inet6", "inet6"), ("any", "any")];
const CONTROL_MASTER: &[(&str, &str)] = &[
    ("true", "true"),
    ("yes", "true"),
    ("false", "false"),
    ("no", "false"),
    ("auto", "auto"),
    ("ask", "ask"),
    ("autoask", "autoask"),
];
const TUNNEL: &[(&str, &str)] = &[
    ("ethernet", "ethernet"),
    ("point-to-point", "point-to-point"),
    ("true", "true"),
    ("yes", "true"),
    ("false", "false"),
    ("no", "false"),
];
const REQUEST_TTY: &[(&str, &str)] = &[
    ("true", "true"),
    ("yes", "true"),
    ("false", "false"),
    ("no", "false"),
    ("force", "force"),
    ("auto", "auto"),
];
const SESSION_TYPE: &[(&str, &str)] = &[
    ("none", "none"),
    ("subsystem", "subsystem"),
    ("default", "default"),
];
const CANONICALIZE: &[(&str, &str)] = &[
    ("true", "true"),
    ("false", "false"),
    ("yes", "true"),
    ("no", "false"),
    ("always", "always"),
];
const PUBKEY_AUTH: &[(&str, &str)] = &[
    ("true", "true"),
    ("false", "false"),
    ("yes", "true"),
    ("no", "false"),
    ("unbound", "unbound"),
    ("host-bound", "host-bound"),
];
const COMPRESSION: &[(&str, &str)] = &[("yes", "yes"), ("no", "no")];
const LOG_LEVEL: &[(&str, &str)] = &[
    ("quiet", "QUIET"),
    ("fatal", "FATAL"),
    ("error", "ERROR"),
    ("info", "INFO"),
    ("verbose", "VERBOSE"),
    ("debug", "DEBUG"),
    ("debug1", "DEBUG"),
    ("debug2", "DEBUG2"),
    ("debug3", "DEBUG3"),
];
const SYSLOG_FACILITY: &[(&str, &str)] = &[
    ("daemon", "DAEMON"),
    ("user", "USER"),
    ("auth", "AUTH"),
    ("authpriv", "AUTHPRIV"),
    ("local0", "LOCAL0"),
    ("local1", "LOCAL1"),
    ("local2", "LOCAL2"),
    ("local3", "LOCAL3"),
    ("local4", "LOCAL4"),
    ("local5", "LOCAL5"),
    ("local6", "LOCAL6"),
    ("local7", "LOCAL7"),
];
const FINGERPRINT_HASH: &[(&str, &str)] = &[
    ("md5", "MD5"),
    ("sha1", "SHA1"),
    ("sha256", "SHA256"),
    ("sha384", "SHA384"),
    ("sha512", "SHA512"),
];

use AlgClass as A;
use Kind as K;

/// Every keyword ssh 9.2 knows: (name as written, canonical name, kind).
const KEYWORDS: &[(&str, &str, Kind)] = &[
    ("host", "host", K::Host),
    ("match", "match", K::Match),
    ("include", "include", K::Include),
    ("protocol", "protocol", K::Ignored),
    ("cipher", "cipher", K::Ignored),
    ("fallbacktorsh", "fallbacktorsh", K::Ignored),
    ("globalknownhostsfile2", "globalknownhostsfile2", K::Ignored),
    ("rhostsauthentication", "rhostsauthentication", K::Ignored),
    ("userknownhostsfile2", "userknownhostsfile2", K::Ignored),
    ("useroaming", "useroaming", K::Ignored),
    ("usersh", "usersh", K::Ignored),
    ("useprivilegedport", "useprivilegedport", K::Ignored),
    ("afstokenpassing", "afstokenpassing", K::Ignored),
    (
        "kerberosauthentication",
        "kerberosauthentication",
        K::Ignored,
    ),
    ("kerberostgtpassing", "kerberostgtpassing", K::Ignored),
    ("rsaauthentication", "rsaauthentication", K::Ignored),
    (
        "rhostsrsaauthentication",
        "rhostsrsaauthentication",
        K::Ignored,
    ),
    ("compressionlevel", "compressionlevel", K::Ignored),
    ("gssapiauthentication", "gssapiauthentication", K::Flag),
    (
        "gssapidelegatecredentials",
        "gssapidelegatecredentials",
        K::Flag,
    ),
    ("pkcs11provider", "pkcs11provider", K::Str),
    ("smartcarddevice", "pkcs11provider", K::Str),
    ("forwardagent", "forwardagent", K::ForwardAgent),
    ("forwardx11", "forwardx11", K::Flag),
    ("forwardx11trusted", "forwardx11trusted", K::Flag),
    ("forwardx11timeout", "forwardx11timeout", K::Time),
    ("exitonforwardfailure", "exitonforwardfailure", K::Flag),
    ("xauthlocation", "xauthlocation", K::Str),
    ("gatewayports", "gatewayports", K::Flag),
    ("passwordauthentication", "passwordauthentication", K::Flag),
    (
        "kbdinteractiveauthentication",
        "kbdinteractiveauthentication",
        K::Flag,
    ),
    ("kbdinteractivedevices", "kbdinteractivedevices", K::Str),
    (
        "challengeresponseauthentication",
        "kbdinteractiveauthentication",
        K::Flag,
    ),
    (
        "skeyauthentication",
        "kbdinteractiveauthentication",
        K::Flag,
    ),
    ("tisauthentication", "kbdinteractiveauthentication", K::Flag),
    (
        "pubkeyauthentication",
        "pubkeyauthentication",
        K::Choice(PUBKEY_AUTH),
    ),
    (
        "dsaauthentication",
        "pubkeyauthentication",
        K::Choice(PUBKEY_AUTH),
    ),
    (
        "hostbasedauthentication",
        "hostbasedauthentication",
        K::Flag,
    ),
    ("identityfile", "identityfile", K::IdentityFile),
    ("identityfile2", "identityfile", K::IdentityFile),
    ("identitiesonly", "identitiesonly", K::Flag),
    ("certificatefile", "certificatefile", K::CertificateFile),
    ("addkeystoagent", "addkeystoagent", K::Args(2)),
    ("identityagent", "identityagent", K::IdentityAgent),
    ("hostname", "hostname", K::Str),
    ("hostkeyalias", "hostkeyalias", K::Str),
    ("proxycommand", "proxycommand", K::ProxyCommand),
    ("port", "port", K::Port),
    ("ciphers", "ciphers", K::Algorithms(A::Cipher)),
    ("macs", "macs", K::Algorithms(A::Mac)),
    ("remoteforward", "remoteforward", K::RemoteForward),
    ("localforward", "localforward", K::LocalForward),
    ("permitremoteopen", "permitremoteopen", K::List),
    ("user", "user", K::Str),
    ("escapechar", "escapechar", K::Str),
    ("globalknownhostsfile", "globalknownhostsfile", K::List),
    ("userknownhostsfile", "userknownhostsfile", K::List),
    ("connectionattempts", "connectionattempts", K::Int),
    ("batchmode", "batchmode", K::Flag),
    ("checkhostip", "checkhostip", K::Flag),
    (
        "stricthostkeychecking",
        "stricthostkeychecking",
        K::Choice(STRICT_HOST_KEY),
    ),
    ("compression", "compression", K::Choice(COMPRESSION)),
    ("tcpkeepalive", "tcpkeepalive", K::Flag),
    ("keepalive", "tcpkeepalive", K::Flag),
    ("numberofpasswordprompts", "numberofpasswordprompts", K::Int),
    (
        "syslogfacility",
        "syslogfacility",
        K::Choice(SYSLOG_FACILITY),
    ),
    ("loglevel", "loglevel", K::Choice(LOG_LEVEL)),
    ("logverbose", "logverbose", K::List),
    ("dynamicforward", "dynamicforward", K::DynamicForward),
    (
        "preferredauthentications",
        "preferredauthentications",
        K::Str,
    ),
    (
        "hostkeyalgorithms",
        "hostkeyalgorithms",
        K::Algorithms(A::Key),
    ),
    (
        "casignaturealgorithms",
        "casignaturealgorithms",
        K::Algorithms(A::Signature),
    ),
    ("bindaddress", "bindaddress", K::Str),
    ("bindinterface", "bindinterface", K::Str),
    ("clearallforwardings", "clearallforwardings", K::Flag),
    ("enablesshkeysign", "enablesshkeysign", K::Flag),
    (
        "verifyhostkeydns",
        "verifyhostkeydns",
        K::Choice(YES_NO_ASK),
    ),
    (
        "nohostauthenticationforlocalhost",
        "nohostauthenticationforlocalhost",
        K::Flag,
    ),
    ("rekeylimit", "rekeylimit", K::Args(2)),
    ("connecttimeout", "connecttimeout", K::Time),
    ("addressfamily", "addressfamily", K::Choice(ADDRESS_FAMILY)),
    ("serveraliveinterval", "serveraliveinterval", K::Time),
    ("serveralivecountmax", "serveralivecountmax", K::Int),
    ("sendenv", "sendenv", K::SendEnv),
    ("setenv", "setenv", K::SetEnv),
    ("controlpath", "controlpath", K::Str),
    ("controlmaster", "controlmaster", K::Choice(CONTROL_MASTER)),
    ("controlpersist", "controlpersist", K::Str),
    ("hashknownhosts", "hashknownhosts", K::Flag),
    ("tunnel", "tunnel", K::Choice(TUNNEL)),
    ("tunneldevice", "tunneldevice", K::Str),
    ("localcommand", "localcommand", K::Command),
    ("permitlocalcommand", "permitlocalcommand", K::Flag),
    ("remotecommand", "remotecommand", K::Command),
    ("visualhostkey", "visualhostkey", K::Flag),
    ("kexalgorithms", "kexalgorithms", K::Algorithms(A::Kex)),
    ("ipqos", "ipqos", K::Args(2)),
    ("requesttty", "requesttty", K::Choice(REQUEST_TTY)),
    ("sessiontype", "sessiontype", K::Choice(SESSION_TYPE)),
    ("stdinnull", "stdinnull", K::Flag),
    (
        "forkafterauthentication",
        "forkafterauthentication",
        K::Flag,
    ),
    ("proxyusefdpass", "proxyusefdpass", K::Flag),
    ("canonicaldomains", "canonicaldomains", K::List),
    (
        "canonicalizefallbacklocal",
        "canonicalizefallbacklocal",
        K::Flag,
    ),
    (
        "canonicalizehostname",
        "canonicalizehostname",
        K::Choice(CANONICALIZE),
    ),
    ("canonicalizemaxdots", "canonicalizemaxdots", K::Int),
    (
        "canonicalizepermittedcnames",
        "canonicalizepermittedcnames",
        K::List,
    ),
    ("streamlocalbindmask", "streamlocalbindmask", K::Str),
    ("streamlocalbindunlink", "streamlocalbindunlink", K::Flag),
    ("revokedhostkeys", "revokedhostkeys", K::Str),
    (
        "fingerprinthash",
        "fingerprinthash",
        K::Choice(FINGERPRINT_HASH),
    ),
    ("updatehostkeys", "updatehostkeys", K::Choice(YES_NO_ASK)),
    (
        "hostbasedacceptedalgorithms",
        "hostbasedacceptedalgorithms",
        K::Algorithms(A::Key),
    ),
    (
        "hostbasedkeytypes",
        "hostbasedacceptedalgorithms",
        K::Algorithms(A::Key),
    ),
    (
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedalgorithms",
        K::Algorithms(A::Key),
    ),
    (
        "pubkeyacceptedkeytypes",
        "pubkeyacceptedalgorithms",
        K::Algorithms(A::Key),
    ),
    ("ignoreunknown", "ignoreunknown", K::Str),
    ("proxyjump", "proxyjump", K::ProxyJump),
    ("securitykeyprovider", "securitykeyprovider", K::Str),
    ("knownhostscommand", "knownhostscommand", K::Command),
    ("requiredrsasize", "requiredrsasize", K::Int),
    (
        "enableescapecommandline",
        "enableescapecommandline",
        K::Flag,
    ),
];

/// Looks a (lowercased) keyword up: its canonical name and kind.
pub(crate) fn lookup(keyword: &str) -> Option<(&'static str, Kind)> {
    KEYWORDS
        .iter()
        .find(|(name, _, _)| *name == keyword)
        .map(|(_, canon, kind)| (*canon, *kind))
}

/// The canonical spelling of a Choice value, if `value` is one of them
/// (compared case-insensitively, as ssh does).
pub(crate) fn choice(table: &[(&str, &'static str)], value: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(value))
        .map(|(_, out)| *out)
}

/// Flags accept the same four words everywhere.
pub(crate) fn flag(value: &str) -> Option<&'static str> {
    choice(
        &[
            ("yes", "yes"),
            ("true", "yes"),
            ("no", "no"),
            ("false", "no"),
        ],
        value,
    )
}
