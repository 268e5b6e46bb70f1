/// Personal data as it may be shown to people without the right to see it in full.
public enum PersonalData {
    /// A phone number with its middle hidden: 13812345678 → 138****5678.
    public static func maskPhone(_ phone: String) -> String {
        let characters = Array(phone)
        guard characters.count >= 7 else { return String(repeating: "*", count: characters.count) }
        return String(characters.prefix(3)) + "****" + String(characters.suffix(4))
    }
}
