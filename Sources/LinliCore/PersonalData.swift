/// Personal data as it may be shown to people without the right to see it in full.
public enum PersonalData {
    /// A phone number with its middle hidden: 13812345678 → 138****5678.
    public static func maskPhone(_ phone: String) -> String {
        let characters = Array(phone)
        guard characters.count >= 7 else { return String(repeating: "*", count: characters.count) }
        return String(characters.prefix(3)) + "****" + String(characters.suffix(4))
    }
}

extension PersonalData {
    /// An ID number with only its first three and last four characters shown.
    public static func maskIDNumber(_ number: String) -> String {
        let characters = Array(number)
        guard characters.count >= 8 else { return String(repeating: "*", count: characters.count) }
        return String(characters.prefix(3)) + String(repeating: "*", count: characters.count - 7) + String(characters.suffix(4))
    }

    /// Whether `number` is a valid 18-character resident ID number (GB 11643: ISO 7064 MOD 11-2 check character).
    public static func isValidIDNumber(_ number: String) -> Bool {
        let characters = Array(number.uppercased())
        guard characters.count == 18, characters.prefix(17).allSatisfy(\.isASCII), characters.prefix(17).allSatisfy(\.isNumber) else {
            return false
        }
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(characters.prefix(17), weights).reduce(0) { $0 + (Int(String($1.0)) ?? 0) * $1.1 }
        let check = Array("10X98765432")[sum % 11]
        return characters[17] == check
    }
}
