fn main() {
    eprintln!("dutycard: the server is not built yet (issue 5)");
    std::process::exit(2);
}
