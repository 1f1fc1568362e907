// The echo limit of scripts/bench_orders.py in C++: QuickFIX's C++ engine (Debian's
// libquickfix-dev) with a C++ Application that answers each NewOrderSingle with an
// ExecutionReport New and an ExecutionReport Fill built from the message alone -- no order
// state, no venue, no database. The same replies, settings, FileStore, FileLog and FIX 4.4
// dictionary as scripts/qf_acceptor.py (whose application is Python); that script writes the
// settings and runs this program with --native.
//
//   qf_echo SETTINGS_FILE PORT   (prints "listening on 127.0.0.1:PORT", runs until SIGTERM)
//
// Built by scripts/setup.sh --bench:
//   g++ -O2 -std=c++14 scripts/native/qf_echo.cpp -lquickfix -lpthread -o .venv/bin/qf_echo
#include <csignal>
#include <cstdio>
#include <string>
#include <unistd.h>

#include <quickfix/Application.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/FieldConvertors.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>

namespace {

volatile std::sig_atomic_t stopping = 0;

void on_signal(int) { stopping = 1; }

class Echo : public FIX::Application {
 public:
  void onCreate(const FIX::SessionID&) {}
  void onLogon(const FIX::SessionID&) {}
  void onLogout(const FIX::SessionID&) {}
  void toAdmin(FIX::Message&, const FIX::SessionID&) {}
  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) {}
  void fromAdmin(const FIX::Message&, const FIX::SessionID&)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
            FIX::RejectLogon) {}

  void fromApp(const FIX::Message& message, const FIX::SessionID& sid)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
            FIX::UnsupportedMessageType) {
    if (message.getHeader().getField(35) != "D") return;
    const std::string oid = std::to_string(++next_id_);
    const std::string qty = message.getField(38);
    const std::string px = message.isSetField(44) ? message.getField(44) : "0";
    const std::string tif = message.isSetField(59) ? message.getField(59) : "0";
    const std::string now = FIX::UtcTimeStampConvertor::convert(FIX::UtcTimeStamp(), 3);
    for (int fill = 0; fill < 2; ++fill) {
      FIX::Message er;
      er.getHeader().setField(35, "8");
      er.setField(11, message.getField(11));
      er.setField(37, oid);
      er.setField(38, qty);
      er.setField(40, message.getField(40));
      er.setField(44, px);
      er.setField(54, message.getField(54));
      er.setField(55, message.getField(55));
      er.setField(59, tif);
      if (fill) {
        er.setField(6, px);
        er.setField(14, qty);
        er.setField(151, "0");
        er.setField(31, px);
        er.setField(32, qty);
      } else {
        er.setField(6, "0");
        er.setField(14, "0");
        er.setField(151, qty);
      }
      er.setField(17, oid + (fill ? ".F" : ".0"));
      er.setField(39, fill ? "2" : "0");
      er.setField(150, fill ? "F" : "0");
      er.setField(60, now);
      FIX::Session::sendToTarget(er, sid);
    }
  }

 private:
  long next_id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SETTINGS_FILE PORT\n", argv[0]);
    return 2;
  }
  try {
    FIX::SessionSettings settings(argv[1]);
    Echo app;
    FIX::FileStoreFactory store(settings);
    FIX::FileLogFactory log(settings);
    FIX::SocketAcceptor acceptor(app, store, settings, log);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    acceptor.start();
    std::printf("listening on 127.0.0.1:%s\n", argv[2]);
    std::fflush(stdout);
    while (!stopping) usleep(200000);
    acceptor.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qf_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
